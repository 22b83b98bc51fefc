variable "name" {
  description = "Name of the cluster, service, load balancer and roles (at most 24 characters: target group names are limited to 32)."
  type        = string
  default     = "jobsd"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "name: 1 to 24 characters of [a-z0-9-], starting with a letter."
  }
}

variable "aws_region" {
  description = "Region of the log group (awslogs driver)."
  type        = string
}

variable "image" {
  description = "jobsd image built from the repository's Dockerfile, by digest or immutable tag (123456789012.dkr.ecr.us-east-2.amazonaws.com/jobsd@sha256:...)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the service and the load balancer."
  type        = string
}

variable "alb_subnet_ids" {
  description = "Public subnets of the internet-facing load balancer (EventBridge API destinations call a public HTTPS endpoint)."
  type        = list(string)
}

variable "service_subnet_ids" {
  description = "Subnets of the tasks (private, with a NAT gateway or VPC endpoints for ECR, Secrets Manager and CloudWatch Logs, and a route to api.mercadolibre.com and PostgreSQL)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for tasks in public subnets without a NAT gateway)."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (the host name of jobsd_base_url)."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_ingress_cidrs" {
  description = "IPv4 ranges allowed to reach the load balancer. API destinations come from EventBridge's public addresses, so the default is open; jobsd authenticates every job route."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "desired_count" {
  description = "Running tasks. Jobs are claimed from job_logs by any instance, so more than one is safe."
  type        = number
  default     = 2
}

variable "cpu" {
  description = "Task CPU units (Fargate sizes)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory, MiB (Fargate sizes)."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64: must match the image."
  type        = string
  default     = "X86_64"
}

variable "environment" {
  description = "Plain environment variables (README.md, Configuration). Never put a secret here: use secret_arns."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Environment variable name => Secrets Manager secret ARN, injected by ECS at task start. Needs INTERNAL_JOBS_KEY and DATABASE_URL; optional INTERNAL_JOBS_KEY_PREVIOUS, JWT_SECRET, JWT_SECRET_PREVIOUS, ML_CLIENT_SECRET, TOKEN_ENCRYPTION_KEY."
  type        = map(string)

  validation {
    condition     = contains(keys(var.secret_arns), "INTERNAL_JOBS_KEY") && contains(keys(var.secret_arns), "DATABASE_URL")
    error_message = "secret_arns needs INTERNAL_JOBS_KEY and DATABASE_URL."
  }
}

variable "kms_key_arns" {
  description = "Customer managed KMS keys of those secrets, if any (the execution role gets kms:Decrypt on them)."
  type        = list(string)
  default     = []
}

variable "shutdown_grace_seconds" {
  description = "SHUTDOWN_GRACE_SECONDS; the container's stopTimeout is 15 s more (Fargate allows up to 120)."
  type        = number
  default     = 25

  validation {
    condition     = var.shutdown_grace_seconds >= 1 && var.shutdown_grace_seconds <= 105
    error_message = "shutdown_grace_seconds must be 1..105 (stopTimeout = grace + 15 <= 120)."
  }
}

variable "sync_wait_seconds" {
  description = "SYNC_WAIT_SECONDS; the load balancer's idle timeout is 20 s more, so a waiting request is never cut."
  type        = number
  default     = 100
}

variable "deregistration_delay" {
  description = "Seconds the load balancer drains a stopping task before ECS sends SIGTERM."
  type        = number
  default     = 30
}

variable "health_check_grace_period_seconds" {
  description = "Seconds after a task starts before load balancer health checks count (migrations run at start-up)."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  description = "Retention of the log group the runbook's CloudWatch Insights query reads."
  type        = number
  default     = 30
}

variable "enable_deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
