output "alb_dns_name" {
  description = "DNS name of the load balancer: point the host of jobsd_base_url at it (alias record)."
  value       = aws_lb.jobsd.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer (for a Route 53 alias record)."
  value       = aws_lb.jobsd.zone_id
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.jobsd.name
}

output "service_name" {
  description = "ECS service (aws ecs update-service --cluster <cluster> --service <service> --force-new-deployment)."
  value       = aws_ecs_service.jobsd.name
}

output "task_definition_arn" {
  description = "Current task definition revision."
  value       = aws_ecs_task_definition.jobsd.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of jobsd (the [INTERNAL-JOB] lines)."
  value       = aws_cloudwatch_log_group.jobsd.name
}

output "service_security_group_id" {
  description = "Security group of the tasks: allow it in the database's security group (port 5432)."
  value       = aws_security_group.service.id
}
