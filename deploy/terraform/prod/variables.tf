variable "aws_region" {
  description = "Region of everything (the runbook's us-east-2)."
  type        = string
  default     = "us-east-2"
}

variable "name_prefix" {
  description = "Prefix of the resource names."
  type        = string
  default     = "jobsd"
}

# ---- the scheduler (the runbook's two variables, plus a list of tenants) -------------------

variable "enable_scheduler" {
  description = "Create the schedules and the EventBridge path. Apply once with false, put the key in the secret, then apply with true."
  type        = bool
  default     = false
}

variable "fleet_schedule" {
  description = "One schedule per job for every tenant ({\"allTenants\": true}): onboarding a tenant is no infrastructure change."
  type        = bool
  default     = true
}

variable "scheduler_tenant_id" {
  description = "A tenant with its own schedules besides the fleet's (UUID; usually empty)."
  type        = string
  default     = ""
}

variable "tenant_ids" {
  description = "More tenants with their own schedules (UUIDs; usually empty: the fleet schedule covers every tenant)."
  type        = list(string)
  default     = []
}

variable "schedule_state" {
  description = "ENABLED or DISABLED (pause every schedule and rule)."
  type        = string
  default     = "ENABLED"
}

variable "enable_sync_schedule" {
  description = "Schedule the Mercado Livre sync too (02:00 São Paulo, before the 03:00 rebuild)."
  type        = bool
  default     = true
}

variable "alarm_emails" {
  description = "E-mail addresses for the alarm topic."
  type        = list(string)
  default     = []
}

# ---- the runtime (ECS Fargate) -----------------------------------------------------------------

variable "jobsd_base_url" {
  description = "Public HTTPS URL of jobsd (https://jobs.example.com): the certificate's name, pointed at the load balancer."
  type        = string
}

variable "route53_zone_id" {
  description = "Hosted zone of jobsd_base_url's host; null if DNS is managed elsewhere."
  type        = string
  default     = null
}

variable "image" {
  description = "jobsd image (ECR), by digest or immutable tag."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the service."
  type        = string
}

variable "alb_subnet_ids" {
  description = "Public subnets of the load balancer."
  type        = list(string)
}

variable "service_subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for jobsd_base_url's host."
  type        = string
}

variable "desired_count" {
  description = "Running tasks."
  type        = number
  default     = 2
}

# ---- secrets: ARNs only, never values --------------------------------------------------------

variable "database_url_secret_arn" {
  description = "Secret holding DATABASE_URL."
  type        = string
}

variable "jwt_secret_arn" {
  description = "Secret holding JWT_SECRET (the product API's HS256 secret); null leaves the JWT routes at 503."
  type        = string
  default     = null
}

variable "internal_jobs_key_previous_secret_arn" {
  description = "Secret holding INTERNAL_JOBS_KEY_PREVIOUS, only during a key rotation (docs/operations.md)."
  type        = string
  default     = null
}

variable "ml_client_secret_arn" {
  description = "Secret holding ML_CLIENT_SECRET (Mercado Livre app), needed to refresh seller tokens."
  type        = string
  default     = null
}

variable "ml_client_id" {
  description = "ML_CLIENT_ID (not a secret)."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Default tags."
  type        = map(string)
  default = {
    service = "jobsd"
  }
}
