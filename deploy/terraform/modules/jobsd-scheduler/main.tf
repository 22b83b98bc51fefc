# The EventBridge path that works. EventBridge Scheduler cannot target an API destination, so:
#
#   schedule (cron in America/Sao_Paulo: one fleet schedule per job, {"allTenants": true};
#             per-tenant schedules only for the tenants listed in tenant_ids)
#     -> PutEvents on a custom bus (detail: {"allTenants": true} or {"tenantId": ...})
#     -> rule on that bus (matches source + detail-type)
#     -> API destination (POST https://<jobsd>/api/v1/jobs/...; connection with the
#        X-Internal-Key API key; header Prefer: respond-async, wait=3; input transformer)
#
# Retries and dead-letter queues at both hops, alarms to SNS.

data "aws_caller_identity" "current" {}

locals {
  tenants = toset([
    for t in distinct(concat([var.scheduler_tenant_id], var.tenant_ids)) : lower(t) if t != ""
  ])
  # The schedules, by key: "all-tenants" (the fleet schedule: jobsd fans out to every
  # eligible tenant, so onboarding a tenant changes nothing here) and one per listed tenant.
  schedule_targets = merge(
    var.fleet_schedule ? { "all-tenants" = null } : {},
    { for t in local.tenants : t => t },
  )
  rebuild_schedules = var.enable_scheduler ? local.schedule_targets : {}
  sync_schedules    = var.enable_scheduler && var.enable_sync_schedule ? local.schedule_targets : {}
  fleet_rebuild     = var.enable_scheduler && var.fleet_schedule
  fleet_sync        = var.enable_scheduler && var.fleet_schedule && var.enable_sync_schedule
  base_url          = trimsuffix(var.jobsd_base_url, "/")
  account_id        = data.aws_caller_identity.current.account_id

  # The event's source must not start with "aws." (EventBridgeParameters.Source).
  event_source        = "${var.name_prefix}.scheduler"
  rebuild_detail_type = "jobsd.rebuild-daily-metrics"
  sync_detail_type    = "jobsd.sync-mercadolivre"
  # The fleet events have their own detail-type, matched by their own rule: its input
  # transformer sends {"allTenants": true, ...} instead of a tenantId.
  all_tenants_suffix = ".all-tenants"

  internal_key_secret_arn = var.internal_jobs_key_secret_arn != null ? var.internal_jobs_key_secret_arn : aws_secretsmanager_secret.internal_key[0].arn
  alarm_topic_arn         = var.alarm_topic_arn != null ? var.alarm_topic_arn : aws_sns_topic.alerts[0].arn

  # What the connection sends until sync-connection-key.sh has run: never a key (shorter than
  # the 32 bytes jobsd requires of INTERNAL_JOBS_KEY, so it cannot equal one), and allowed by
  # EventBridge's ApiKeyValue pattern (no ':' or control character).
  connection_key_placeholder = "unset-run-sync-connection-key"
}

# ------------------------------------------------------------------ the internal key
# The secret holds INTERNAL_JOBS_KEY. Terraform never receives the value, so it never reaches
# the state or a plan: put it with `aws secretsmanager put-secret-value` (README.md). jobsd
# reads the secret by ARN (ECS / App Runner secrets); the connection below gets it from
# sync-connection-key.sh, outside Terraform.
resource "aws_secretsmanager_secret" "internal_key" {
  count = var.internal_jobs_key_secret_arn == null ? 1 : 0

  name                    = var.internal_jobs_key_secret_name
  description             = "jobsd INTERNAL_JOBS_KEY (X-Internal-Key), at least 32 bytes. Sent by the EventBridge connection, checked by jobsd."
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = var.tags
}

# ------------------------------------------------------------------ bus and schedule group
resource "aws_cloudwatch_event_bus" "jobs" {
  count = var.enable_scheduler ? 1 : 0

  name = "${var.name_prefix}-jobs"
  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.base_url != ""
      error_message = "enable_scheduler needs jobsd_base_url (https://...)."
    }
    precondition {
      condition     = var.fleet_schedule || length(local.tenants) > 0
      error_message = "enable_scheduler needs fleet_schedule = true, or scheduler_tenant_id or tenant_ids."
    }
  }
}

resource "aws_scheduler_schedule_group" "jobs" {
  count = var.enable_scheduler ? 1 : 0

  name = "${var.name_prefix}-jobs"
  tags = var.tags
}

# ------------------------------------------------------------------ schedules
# One fleet schedule per job (key "all-tenants": the detail says allTenants) and one per
# listed tenant (the detail names the tenant); the rule's input transformer adds the event's
# time as "to", so a retry or a replay from the DLQ after midnight rebuilds the same window.
resource "aws_scheduler_schedule" "rebuild" {
  for_each = local.rebuild_schedules

  name                         = "${var.name_prefix}-rebuild-${each.key}"
  group_name                   = aws_scheduler_schedule_group.jobs[0].name
  description                  = "jobsd rebuild-daily-metrics for ${each.value == null ? "every active tenant" : "tenant ${each.key}"} (daysBack ${var.rebuild_days_back} ending at the event's date)"
  schedule_expression          = var.rebuild_schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.schedule_state

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_cloudwatch_event_bus.jobs[0].arn
    role_arn = aws_iam_role.scheduler[0].arn
    input = jsonencode(merge(
      each.value == null ? { allTenants = true } : { tenantId = each.value },
      { job = "rebuild-daily-metrics", scheduledTime = "<aws.scheduler.scheduled-time>" },
    ))

    eventbridge_parameters {
      source      = local.event_source
      detail_type = "${local.rebuild_detail_type}${each.value == null ? local.all_tenants_suffix : ""}"
    }

    retry_policy {
      maximum_retry_attempts       = var.retry_attempts
      maximum_event_age_in_seconds = var.maximum_event_age_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.scheduler_dlq[0].arn
    }
  }
}

resource "aws_scheduler_schedule" "sync" {
  for_each = local.sync_schedules

  name                         = "${var.name_prefix}-sync-${each.key}"
  group_name                   = aws_scheduler_schedule_group.jobs[0].name
  description                  = "jobsd sync-mercadolivre for ${each.value == null ? "every tenant with an active connection" : "tenant ${each.key}"} (daysBack ${var.sync_days_back})"
  schedule_expression          = var.sync_schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.schedule_state

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_cloudwatch_event_bus.jobs[0].arn
    role_arn = aws_iam_role.scheduler[0].arn
    input = jsonencode(merge(
      each.value == null ? { allTenants = true } : { tenantId = each.value },
      { job = "sync-mercadolivre", scheduledTime = "<aws.scheduler.scheduled-time>" },
    ))

    eventbridge_parameters {
      source      = local.event_source
      detail_type = "${local.sync_detail_type}${each.value == null ? local.all_tenants_suffix : ""}"
    }

    retry_policy {
      maximum_retry_attempts       = var.retry_attempts
      maximum_event_age_in_seconds = var.maximum_event_age_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.scheduler_dlq[0].arn
    }
  }
}

# ------------------------------------------------------------------ connection and API destinations
# The connection's API key must never be read from the secret here: `api_key.value` is a
# plain (sensitive, not write-only) argument in the AWS provider, so whatever Terraform puts
# there is stored in the state, and an ephemeral value cannot be assigned to it. Terraform
# creates the connection with a placeholder jobsd rejects (401: fail closed) and then ignores
# the value; sync-connection-key.sh copies the key from the secret into the connection
# (`aws events update-connection`), at the first deployment and at every rotation. EventBridge
# keeps it in its own Secrets Manager secret (`secret_arn`); the state keeps the placeholder.
resource "aws_cloudwatch_event_connection" "jobsd" {
  count = var.enable_scheduler ? 1 : 0

  name               = "${var.name_prefix}-internal-jobs"
  description        = "X-Internal-Key for jobsd: put from ${var.internal_jobs_key_secret_name} by sync-connection-key.sh, never by Terraform"
  authorization_type = "API_KEY"

  auth_parameters {
    api_key {
      key   = "X-Internal-Key"
      value = local.connection_key_placeholder
    }
  }

  lifecycle {
    # The real key is put out of band; an apply must never put the placeholder back.
    ignore_changes = [auth_parameters[0].api_key[0].value]
  }
}

resource "aws_cloudwatch_event_api_destination" "rebuild" {
  count = var.enable_scheduler ? 1 : 0

  name                             = "${var.name_prefix}-rebuild-daily-metrics"
  description                      = "POST /api/v1/jobs/rebuild-daily-metrics"
  invocation_endpoint              = "${local.base_url}/api/v1/jobs/rebuild-daily-metrics"
  http_method                      = "POST"
  invocation_rate_limit_per_second = var.invocation_rate_limit_per_second
  connection_arn                   = aws_cloudwatch_event_connection.jobsd[0].arn
}

resource "aws_cloudwatch_event_api_destination" "sync" {
  count = var.enable_scheduler && var.enable_sync_schedule ? 1 : 0

  name                             = "${var.name_prefix}-sync-mercadolivre"
  description                      = "POST /api/v1/jobs/sync-mercadolivre"
  invocation_endpoint              = "${local.base_url}/api/v1/jobs/sync-mercadolivre"
  http_method                      = "POST"
  invocation_rate_limit_per_second = var.invocation_rate_limit_per_second
  connection_arn                   = aws_cloudwatch_event_connection.jobsd[0].arn
}

# ------------------------------------------------------------------ rules and targets
resource "aws_cloudwatch_event_rule" "rebuild" {
  count = var.enable_scheduler ? 1 : 0

  name           = "${var.name_prefix}-rebuild-daily-metrics"
  description    = "Scheduled rebuild events -> jobsd"
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  state          = var.schedule_state # pausing pauses the rules too (an apply never re-enables them)
  event_pattern = jsonencode({
    source        = [local.event_source]
    "detail-type" = [local.rebuild_detail_type]
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "rebuild" {
  count = var.enable_scheduler ? 1 : 0

  rule           = aws_cloudwatch_event_rule.rebuild[0].name
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  target_id      = "jobsd-rebuild-daily-metrics"
  arn            = aws_cloudwatch_event_api_destination.rebuild[0].arn
  role_arn       = aws_iam_role.events[0].arn

  # {"tenantId": "<uuid>", "to": "<event time, RFC 3339>", "daysBack": 2}: jobsd takes the
  # timestamp's calendar date in JOBS_TIMEZONE, so every retry names the same window.
  input_transformer {
    input_paths = {
      tenantId  = "$.detail.tenantId"
      eventTime = "$.time"
    }
    input_template = "{\"tenantId\": <tenantId>, \"to\": <eventTime>, \"daysBack\": ${var.rebuild_days_back}}"
  }

  http_target {
    header_parameters = {
      Prefer = var.prefer_header
    }
  }

  retry_policy {
    maximum_retry_attempts       = var.retry_attempts
    maximum_event_age_in_seconds = var.maximum_event_age_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq[0].arn
  }
}

resource "aws_cloudwatch_event_rule" "sync" {
  count = var.enable_scheduler && var.enable_sync_schedule ? 1 : 0

  name           = "${var.name_prefix}-sync-mercadolivre"
  description    = "Scheduled Mercado Livre sync events -> jobsd"
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  state          = var.schedule_state # pausing pauses the rules too (an apply never re-enables them)
  event_pattern = jsonencode({
    source        = [local.event_source]
    "detail-type" = [local.sync_detail_type]
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "sync" {
  count = var.enable_scheduler && var.enable_sync_schedule ? 1 : 0

  rule           = aws_cloudwatch_event_rule.sync[0].name
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  target_id      = "jobsd-sync-mercadolivre"
  arn            = aws_cloudwatch_event_api_destination.sync[0].arn
  role_arn       = aws_iam_role.events[0].arn

  input_transformer {
    input_paths = {
      tenantId = "$.detail.tenantId"
    }
    input_template = "{\"tenantId\": <tenantId>, \"daysBack\": ${var.sync_days_back}}"
  }

  http_target {
    header_parameters = {
      Prefer = var.prefer_header
    }
  }

  retry_policy {
    maximum_retry_attempts       = var.retry_attempts
    maximum_event_age_in_seconds = var.maximum_event_age_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq[0].arn
  }
}

# The fleet rules: the same API destinations, a body naming every tenant. jobsd records one
# parent job that enqueues a child per eligible tenant; a retried event joins the running
# parent (deduplicated like any job).
resource "aws_cloudwatch_event_rule" "rebuild_all" {
  count = local.fleet_rebuild ? 1 : 0

  name           = "${var.name_prefix}-rebuild-all-tenants"
  description    = "Scheduled fleet rebuild events (every active tenant) -> jobsd"
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  state          = var.schedule_state
  event_pattern = jsonencode({
    source        = [local.event_source]
    "detail-type" = ["${local.rebuild_detail_type}${local.all_tenants_suffix}"]
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "rebuild_all" {
  count = local.fleet_rebuild ? 1 : 0

  rule           = aws_cloudwatch_event_rule.rebuild_all[0].name
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  target_id      = "jobsd-rebuild-all-tenants"
  arn            = aws_cloudwatch_event_api_destination.rebuild[0].arn
  role_arn       = aws_iam_role.events[0].arn

  # {"allTenants": true, "to": "<event time>", "daysBack": 2}
  input_transformer {
    input_paths = {
      eventTime = "$.time"
    }
    input_template = "{\"allTenants\": true, \"to\": <eventTime>, \"daysBack\": ${var.rebuild_days_back}}"
  }

  http_target {
    header_parameters = {
      Prefer = var.prefer_header
    }
  }

  retry_policy {
    maximum_retry_attempts       = var.retry_attempts
    maximum_event_age_in_seconds = var.maximum_event_age_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq[0].arn
  }
}

resource "aws_cloudwatch_event_rule" "sync_all" {
  count = local.fleet_sync ? 1 : 0

  name           = "${var.name_prefix}-sync-all-tenants"
  description    = "Scheduled fleet Mercado Livre sync events (every connected tenant) -> jobsd"
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  state          = var.schedule_state
  event_pattern = jsonencode({
    source        = [local.event_source]
    "detail-type" = ["${local.sync_detail_type}${local.all_tenants_suffix}"]
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "sync_all" {
  count = local.fleet_sync ? 1 : 0

  rule           = aws_cloudwatch_event_rule.sync_all[0].name
  event_bus_name = aws_cloudwatch_event_bus.jobs[0].name
  target_id      = "jobsd-sync-all-tenants"
  arn            = aws_cloudwatch_event_api_destination.sync[0].arn
  role_arn       = aws_iam_role.events[0].arn

  # {"allTenants": true, "daysBack": 30}: a constant body.
  input = jsonencode({ allTenants = true, daysBack = var.sync_days_back })

  http_target {
    header_parameters = {
      Prefer = var.prefer_header
    }
  }

  retry_policy {
    maximum_retry_attempts       = var.retry_attempts
    maximum_event_age_in_seconds = var.maximum_event_age_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq[0].arn
  }
}

# ------------------------------------------------------------------ dead-letter queues
# Scheduler's DLQ: events it could not put on the bus (it writes with its execution role).
resource "aws_sqs_queue" "scheduler_dlq" {
  count = var.enable_scheduler ? 1 : 0

  name                      = "${var.name_prefix}-scheduler-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# The rules' DLQ: events jobsd did not accept after the retries (non-retryable 4xx at once).
# EventBridge writes with the queue policy below, limited to this module's rules.
resource "aws_sqs_queue" "events_dlq" {
  count = var.enable_scheduler ? 1 : 0

  name                      = "${var.name_prefix}-events-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "events_dlq" {
  count = var.enable_scheduler ? 1 : 0

  statement {
    sid       = "EventBridgeRulesDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events_dlq[0].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = concat(
        [aws_cloudwatch_event_rule.rebuild[0].arn],
        aws_cloudwatch_event_rule.sync[*].arn,
        aws_cloudwatch_event_rule.rebuild_all[*].arn,
        aws_cloudwatch_event_rule.sync_all[*].arn,
      )
    }
  }
}

resource "aws_sqs_queue_policy" "events_dlq" {
  count = var.enable_scheduler ? 1 : 0

  queue_url = aws_sqs_queue.events_dlq[0].id
  policy    = data.aws_iam_policy_document.events_dlq[0].json
}
