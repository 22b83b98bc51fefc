output "service_url" {
  description = "https:// base URL of the service: the scheduler module's jobsd_base_url (or a custom domain)."
  value       = "https://${aws_apprunner_service.jobsd.service_url}"
}

output "service_arn" {
  description = "App Runner service ARN (aws apprunner start-deployment --service-arn ...)."
  value       = aws_apprunner_service.jobsd.arn
}
