output "internal_jobs_key_secret_arn" {
  description = "Put the key here: aws secretsmanager put-secret-value --secret-id <this> --secret-string file://..."
  value       = module.scheduler.internal_jobs_key_secret_arn
}

output "alb_dns_name" {
  description = "Load balancer DNS name (alias target of jobsd_base_url's host)."
  value       = module.ecs.alb_dns_name
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = module.ecs.cluster_name
}

output "ecs_service_name" {
  description = "ECS service."
  value       = module.ecs.service_name
}

output "log_group_name" {
  description = "CloudWatch Logs group (CloudWatch Insights: filter @message like /INTERNAL-JOB/)."
  value       = module.ecs.log_group_name
}

output "service_security_group_id" {
  description = "Allow this security group in the database's security group."
  value       = module.ecs.service_security_group_id
}

output "schedule_group_name" {
  description = "EventBridge Scheduler group."
  value       = module.scheduler.schedule_group_name
}

output "rebuild_schedule_names" {
  description = "Rebuild schedule per tenant."
  value       = module.scheduler.rebuild_schedule_names
}

output "sync_schedule_names" {
  description = "Sync schedule per tenant."
  value       = module.scheduler.sync_schedule_names
}

output "event_bus_name" {
  description = "Custom event bus."
  value       = module.scheduler.event_bus_name
}

output "rule_names" {
  description = "Rules on the bus."
  value       = module.scheduler.rule_names
}

output "connection_name" {
  description = "EventBridge connection (X-Internal-Key)."
  value       = module.scheduler.connection_name
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues."
  value       = module.scheduler.dead_letter_queue_urls
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.scheduler.alarm_topic_arn
}
