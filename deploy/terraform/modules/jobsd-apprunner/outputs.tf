output "service_url" {
  description = "https:// base URL of the service: the scheduler module's jobsd_base_url (or a custom domain)."
  value       = "https://${aws_apprunner_service.jobsd.service_url}"
}

output "service_arn" {
  description = "App Runner service ARN (aws apprunner start-deployment --service-arn ...)."
  value       = aws_apprunner_service.jobsd.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the service's application logs (App Runner creates it when the service first runs; the [INTERNAL-JOB] lines)."
  value       = "/aws/apprunner/${aws_apprunner_service.jobsd.service_name}/${aws_apprunner_service.jobsd.service_id}/application"
}
