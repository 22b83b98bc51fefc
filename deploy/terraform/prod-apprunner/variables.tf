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

variable "enable_scheduler" {
  description = "Create the schedules and the EventBridge path (apply once with false, put the key, then true)."
  type        = bool
  default     = false
}

variable "scheduler_tenant_id" {
  description = "The runbook's tenant (UUID)."
  type        = string
  default     = ""
}

variable "tenant_ids" {
  description = "More tenants to schedule (UUIDs)."
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

variable "jobsd_base_url" {
  description = "Custom domain of the service (https://...); empty: the App Runner default domain."
  type        = string
  default     = ""
}

variable "image" {
  description = "jobsd image in private ECR, by digest or immutable tag."
  type        = string
}

variable "vpc_connector_arn" {
  description = "App Runner VPC connector to reach the database, or null."
  type        = string
  default     = null
}

variable "database_url_secret_arn" {
  description = "Secret holding DATABASE_URL."
  type        = string
}

variable "jwt_secret_arn" {
  description = "Secret holding JWT_SECRET, or null."
  type        = string
  default     = null
}

variable "internal_jobs_key_previous_secret_arn" {
  description = "Secret holding INTERNAL_JOBS_KEY_PREVIOUS during a rotation, or null."
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
