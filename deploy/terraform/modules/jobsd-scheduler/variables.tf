variable "name_prefix" {
  description = "Prefix of every resource name (schedule names are <prefix>-rebuild-<tenant uuid>, at most 64 characters)."
  type        = string
  default     = "jobsd"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.name_prefix))
    error_message = "name_prefix: 1 to 16 characters of [a-z0-9-], starting with a letter."
  }
}

variable "enable_scheduler" {
  description = "Create the schedules, the event bus, the rules, the connection and the API destinations (the runbook's variable). With false only the internal key's secret and the alarm topic exist: create them first, put the key, then enable."
  type        = bool
  default     = false
}

variable "scheduler_tenant_id" {
  description = "The runbook's single tenant (a UUID). Merged with tenant_ids; either may be empty."
  type        = string
  default     = ""

  validation {
    condition     = var.scheduler_tenant_id == "" || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.scheduler_tenant_id))
    error_message = "scheduler_tenant_id must be a UUID (or empty)."
  }
}

variable "tenant_ids" {
  description = "Tenants to schedule (UUIDs). One rebuild schedule and one sync schedule per tenant."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.tenant_ids : can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", t))])
    error_message = "tenant_ids must all be UUIDs."
  }
}

variable "jobsd_base_url" {
  description = "Public HTTPS base URL of jobsd, without a trailing path (https://jobs.example.com). API destinations accept only HTTPS endpoints with a publicly trusted certificate."
  type        = string
  default     = ""

  validation {
    condition     = var.jobsd_base_url == "" || can(regex("^https://[^/]+$", trimsuffix(var.jobsd_base_url, "/")))
    error_message = "jobsd_base_url must be https://host[:port], without a path."
  }
}

variable "internal_jobs_key_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding INTERNAL_JOBS_KEY. Null: the module creates the secret (without a value: put it with the CLI, see the README)."
  type        = string
  default     = null
}

variable "internal_jobs_key_secret_name" {
  description = "Name of the secret the module creates when internal_jobs_key_secret_arn is null (the runbook's name)."
  type        = string
  default     = "prod/INTERNAL_JOBS_KEY"
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once; 7 to 30 otherwise)."
  type        = number
  default     = 7
}

variable "schedule_timezone" {
  description = "Time zone the cron expressions are evaluated in (daylight saving time is followed)."
  type        = string
  default     = "America/Sao_Paulo"
}

variable "rebuild_schedule_expression" {
  description = "When the daily rebuild runs, in schedule_timezone: 03:00 São Paulo time."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "rebuild_days_back" {
  description = "daysBack of the scheduled rebuild: the window is the last N business days ending at the event's date (2 = yesterday and today)."
  type        = number
  default     = 2

  validation {
    condition     = var.rebuild_days_back >= 1 && var.rebuild_days_back <= 366 && floor(var.rebuild_days_back) == var.rebuild_days_back
    error_message = "rebuild_days_back must be an integer from 1 to 366 (REBUILD_MAX_RANGE_DAYS)."
  }
}

variable "enable_sync_schedule" {
  description = "Also schedule the Mercado Livre sync (before the rebuild, so the rebuild sees fresh facts)."
  type        = bool
  default     = true
}

variable "sync_schedule_expression" {
  description = "When the daily sync runs, in schedule_timezone."
  type        = string
  default     = "cron(0 2 * * ? *)"
}

variable "sync_days_back" {
  description = "daysBack of the scheduled sync (orders of the last N business days; visits of min(N, 150) days)."
  type        = number
  default     = 30

  validation {
    condition     = var.sync_days_back >= 1 && var.sync_days_back <= 365 && floor(var.sync_days_back) == var.sync_days_back
    error_message = "sync_days_back must be an integer from 1 to 365."
  }
}

variable "schedule_state" {
  description = "ENABLED or DISABLED: pause every schedule without deleting anything (rollback scenario 1)."
  type        = string
  default     = "ENABLED"

  validation {
    condition     = contains(["ENABLED", "DISABLED"], var.schedule_state)
    error_message = "schedule_state must be ENABLED or DISABLED."
  }
}

variable "retry_attempts" {
  description = "Retries of the schedule's PutEvents and of the rule's API destination call (AWS allows 0 to 185 for both)."
  type        = number
  default     = 3

  # Scheduler RetryPolicy.MaximumRetryAttempts and EventBridge RetryPolicy.MaximumRetryAttempts:
  # integer, 0..185 (API references). Checked here so a plan fails, not the apply halfway.
  validation {
    condition     = var.retry_attempts >= 0 && var.retry_attempts <= 185 && floor(var.retry_attempts) == var.retry_attempts
    error_message = "retry_attempts must be an integer from 0 to 185 (EventBridge and Scheduler retry policies)."
  }
}

variable "maximum_event_age_seconds" {
  description = "How long the schedule and the rule keep retrying an event (the runbook's 1 hour; AWS allows 60 to 86400 seconds)."
  type        = number
  default     = 3600

  # RetryPolicy.MaximumEventAgeInSeconds of both APIs: integer, 60..86400.
  validation {
    condition     = var.maximum_event_age_seconds >= 60 && var.maximum_event_age_seconds <= 86400 && floor(var.maximum_event_age_seconds) == var.maximum_event_age_seconds
    error_message = "maximum_event_age_seconds must be an integer from 60 to 86400 (EventBridge and Scheduler retry policies)."
  }
}

variable "prefer_header" {
  description = "Prefer header sent to jobsd: answer 202 within 3 s (EventBridge API destinations time out after 5 s)."
  type        = string
  default     = "respond-async, wait=3"
}

variable "invocation_rate_limit_per_second" {
  description = "Most API destination calls per second (a burst of tenants at 03:00 is spread out)."
  type        = number
  default     = 10
}

variable "dlq_message_retention_seconds" {
  description = "How long failed events stay in the dead-letter queues (14 days, the SQS maximum)."
  type        = number
  default     = 1209600
}

variable "alarm_topic_arn" {
  description = "Existing SNS topic for the alarms. Null: the module creates <prefix>-alerts."
  type        = string
  default     = null
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the created alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "fleet_schedule" {
  description = "One schedule per job for the whole fleet, sending {\"allTenants\": true, ...}: jobsd runs the job for every eligible tenant (active; for the sync, with an active Mercado Livre connection), so onboarding a tenant needs no Terraform change. Per-tenant schedules are still made for scheduler_tenant_id and tenant_ids (a tenant listed there and covered by the fleet schedule is triggered twice: jobsd's dedupe joins the two only while one runs)."
  type        = bool
  default     = true
}

variable "log_group_name" {
  description = "CloudWatch Logs group of jobsd (LOG_FORMAT=json). When set, a metric filter counts its \"[INTERNAL-JOB] freshness\" lines at level warn (some active tenant is stale: FRESHNESS_MAX_AGE_HOURS) and an alarm notifies the topic. Null: no filter, no alarm."
  type        = string
  default     = null
}

variable "freshness_metric_namespace" {
  description = "CloudWatch namespace of the freshness metric (StaleFreshnessChecks)."
  type        = string
  default     = "jobsd"
}

variable "freshness_alarm_periods" {
  description = "Consecutive 15-minute periods with a stale freshness check before the alarm fires (each instance checks every FRESHNESS_CHECK_SECONDS, 300 by default)."
  type        = number
  default     = 2

  validation {
    condition     = var.freshness_alarm_periods >= 1 && var.freshness_alarm_periods <= 96 && floor(var.freshness_alarm_periods) == var.freshness_alarm_periods
    error_message = "freshness_alarm_periods must be an integer from 1 to 96."
  }
}
