output "internal_jobs_key_secret_arn" {
  description = "Secret holding INTERNAL_JOBS_KEY: give it to the runtime (ECS / App Runner secrets)."
  value       = local.internal_key_secret_arn
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = local.alarm_topic_arn
}

output "event_bus_name" {
  description = "Custom bus the schedules put events on."
  value       = one(aws_cloudwatch_event_bus.jobs[*].name)
}

output "schedule_group_name" {
  description = "Schedule group of every jobsd schedule."
  value       = one(aws_scheduler_schedule_group.jobs[*].name)
}

output "rebuild_schedule_names" {
  description = "Rebuild schedules: \"all-tenants\" (the fleet schedule) and one per listed tenant (aws scheduler get-schedule --group-name <group> --name <name>)."
  value       = { for t, s in aws_scheduler_schedule.rebuild : t => s.name }
}

output "sync_schedule_names" {
  description = "Sync schedules: \"all-tenants\" and one per listed tenant."
  value       = { for t, s in aws_scheduler_schedule.sync : t => s.name }
}

output "rule_names" {
  description = "Rules on the bus, by job."
  value       = local.rule_names
}

output "api_destination_arns" {
  description = "API destinations, by job."
  value = merge(
    { for d in aws_cloudwatch_event_api_destination.rebuild : "rebuild" => d.arn },
    { for d in aws_cloudwatch_event_api_destination.sync : "sync" => d.arn },
  )
}

output "connection_name" {
  description = "EventBridge connection that sends X-Internal-Key."
  value       = one(aws_cloudwatch_event_connection.jobsd[*].name)
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues: scheduler (PutEvents failures) and events (jobsd did not accept)."
  value = var.enable_scheduler ? {
    scheduler = aws_sqs_queue.scheduler_dlq[0].url
    events    = aws_sqs_queue.events_dlq[0].url
  } : {}
}

output "freshness_alarm_name" {
  description = "The alarm on stale tenants (null without log_group_name)."
  value       = one(aws_cloudwatch_metric_alarm.freshness_stale[*].alarm_name)
}
