output "service_url" {
  description = "App Runner default URL."
  value       = module.apprunner.service_url
}

output "internal_jobs_key_secret_arn" {
  description = "Secret to put INTERNAL_JOBS_KEY in."
  value       = module.scheduler.internal_jobs_key_secret_arn
}

output "rebuild_schedule_names" {
  description = "Rebuild schedule per tenant."
  value       = module.scheduler.rebuild_schedule_names
}

output "schedule_group_name" {
  description = "EventBridge Scheduler group."
  value       = module.scheduler.schedule_group_name
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues."
  value       = module.scheduler.dead_letter_queue_urls
}
