variable "name" {
  description = "App Runner service name (4 to 40 characters)."
  type        = string
  default     = "jobsd"
}

variable "image" {
  description = "jobsd image in a private ECR repository, by digest or immutable tag."
  type        = string
}

variable "cpu" {
  description = "App Runner vCPU setting (\"1024\" = 1 vCPU)."
  type        = string
  default     = "1024"
}

variable "memory" {
  description = "App Runner memory setting, MiB."
  type        = string
  default     = "2048"
}

variable "environment" {
  description = "Plain environment variables (never a secret: use secret_arns)."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Environment variable name => Secrets Manager secret ARN (App Runner runtime environment secrets). Needs INTERNAL_JOBS_KEY and DATABASE_URL."
  type        = map(string)

  validation {
    condition     = contains(keys(var.secret_arns), "INTERNAL_JOBS_KEY") && contains(keys(var.secret_arns), "DATABASE_URL")
    error_message = "secret_arns needs INTERNAL_JOBS_KEY and DATABASE_URL."
  }
}

variable "kms_key_arns" {
  description = "Customer managed KMS keys of those secrets, if any."
  type        = list(string)
  default     = []
}

variable "vpc_connector_arn" {
  description = "App Runner VPC connector to reach a PostgreSQL in a VPC (its NAT must also reach api.mercadolibre.com). Null: the default public egress."
  type        = string
  default     = null
}

variable "sync_wait_seconds" {
  description = "SYNC_WAIT_SECONDS: keep it below App Runner's 120 s request limit."
  type        = number
  default     = 100

  validation {
    condition     = var.sync_wait_seconds >= 0 && var.sync_wait_seconds < 120
    error_message = "sync_wait_seconds must be below 120 (App Runner's request timeout)."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
