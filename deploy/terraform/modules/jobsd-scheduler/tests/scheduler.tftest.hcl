# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: plans the module offline and
# checks what matters to jobsd. scripts/check-deploy.sh runs it when a provider mirror is set.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  enable_scheduler    = true
  scheduler_tenant_id = "3F1C2A4E-8B7D-4C1E-9A2B-5D6E7F8A9B0C"
  tenant_ids          = ["00000000-0000-4000-8000-000000000001", "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"]
  jobsd_base_url      = "https://jobs.example.com/"
}

run "disabled_creates_only_the_secret_and_the_topic" {
  command = plan

  variables {
    enable_scheduler = false
  }

  assert {
    condition     = length(aws_secretsmanager_secret.internal_key) == 1 && aws_secretsmanager_secret.internal_key[0].name == "prod/INTERNAL_JOBS_KEY"
    error_message = "the secret prod/INTERNAL_JOBS_KEY must exist even without the scheduler"
  }

  assert {
    condition     = length(aws_scheduler_schedule.rebuild) == 0 && length(aws_cloudwatch_event_bus.jobs) == 0 && length(aws_cloudwatch_event_connection.jobsd) == 0
    error_message = "enable_scheduler = false must create no schedule, bus or connection"
  }
}

run "one_schedule_per_tenant_at_03_00_sao_paulo" {
  command = plan

  assert {
    condition     = length(aws_scheduler_schedule.rebuild) == 3 && length(aws_scheduler_schedule.sync) == 3
    error_message = "tenants are deduplicated case-insensitively: the fleet schedule and two per-tenant schedules per job"
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].schedule_expression == "cron(0 3 * * ? *)"
    error_message = "the rebuild runs at cron(0 3 * * ? *)"
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].schedule_expression_timezone == "America/Sao_Paulo"
    error_message = "schedules are evaluated in America/Sao_Paulo"
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].flexible_time_window[0].mode == "OFF"
    error_message = "the flexible time window is off"
  }

  assert {
    condition     = jsondecode(aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].target[0].input).tenantId == "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"
    error_message = "the event detail names the tenant"
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].target[0].retry_policy[0].maximum_retry_attempts == 3 && aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].target[0].retry_policy[0].maximum_event_age_in_seconds == 3600
    error_message = "the schedule retries 3 times within 1 hour"
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].target[0].eventbridge_parameters[0].source == "jobsd.scheduler"
    error_message = "the event source is jobsd.scheduler"
  }
}

run "the_rule_sends_what_jobsd_expects" {
  command = plan

  assert {
    condition     = aws_cloudwatch_event_target.rebuild[0].input_transformer[0].input_template == "{\"tenantId\": <tenantId>, \"to\": <eventTime>, \"daysBack\": 2}"
    error_message = "the rebuild body is {tenantId, to: event time, daysBack: 2}"
  }

  assert {
    condition     = aws_cloudwatch_event_target.rebuild[0].input_transformer[0].input_paths["eventTime"] == "$.time" && aws_cloudwatch_event_target.rebuild[0].input_transformer[0].input_paths["tenantId"] == "$.detail.tenantId"
    error_message = "to comes from the event's time, tenantId from its detail"
  }

  assert {
    condition     = aws_cloudwatch_event_target.rebuild[0].http_target[0].header_parameters["Prefer"] == "respond-async, wait=3"
    error_message = "the API destination sends Prefer: respond-async, wait=3"
  }

  assert {
    condition     = aws_cloudwatch_event_target.rebuild[0].retry_policy[0].maximum_retry_attempts == 3 && aws_cloudwatch_event_target.rebuild[0].retry_policy[0].maximum_event_age_in_seconds == 3600
    error_message = "the rule target retries 3 times within 1 hour"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.rebuild[0].invocation_endpoint == "https://jobs.example.com/api/v1/jobs/rebuild-daily-metrics" && aws_cloudwatch_event_api_destination.rebuild[0].http_method == "POST"
    error_message = "the API destination POSTs to the rebuild endpoint (trailing slash of the base URL removed)"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.sync[0].invocation_endpoint == "https://jobs.example.com/api/v1/jobs/sync-mercadolivre"
    error_message = "the sync API destination POSTs to the sync endpoint"
  }

  assert {
    condition     = aws_cloudwatch_event_target.sync[0].input_transformer[0].input_template == "{\"tenantId\": <tenantId>, \"daysBack\": 30}"
    error_message = "the sync body is {tenantId, daysBack: 30}"
  }

  assert {
    condition     = aws_cloudwatch_event_connection.jobsd[0].authorization_type == "API_KEY" && aws_cloudwatch_event_connection.jobsd[0].auth_parameters[0].api_key[0].key == "X-Internal-Key"
    error_message = "the connection sends the API key as X-Internal-Key"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.rebuild[0].event_pattern)["detail-type"][0] == "jobsd.rebuild-daily-metrics"
    error_message = "the rebuild rule matches the rebuild detail-type"
  }
}

run "one_fleet_schedule_per_job_by_default" {
  command = plan

  variables {
    scheduler_tenant_id = ""
    tenant_ids          = []
  }

  assert {
    condition     = keys(aws_scheduler_schedule.rebuild) == ["all-tenants"] && keys(aws_scheduler_schedule.sync) == ["all-tenants"]
    error_message = "without listed tenants there is exactly one rebuild and one sync schedule, for the whole fleet"
  }

  assert {
    condition     = jsondecode(aws_scheduler_schedule.rebuild["all-tenants"].target[0].input).allTenants == true && !can(jsondecode(aws_scheduler_schedule.rebuild["all-tenants"].target[0].input).tenantId)
    error_message = "the fleet schedule's detail says allTenants and names no tenant"
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["all-tenants"].target[0].eventbridge_parameters[0].detail_type == "jobsd.rebuild-daily-metrics.all-tenants" && aws_scheduler_schedule.sync["all-tenants"].target[0].eventbridge_parameters[0].detail_type == "jobsd.sync-mercadolivre.all-tenants"
    error_message = "the fleet events have their own detail-type"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.rebuild_all[0].event_pattern)["detail-type"][0] == "jobsd.rebuild-daily-metrics.all-tenants"
    error_message = "the fleet rebuild rule matches the fleet detail-type"
  }

  assert {
    condition     = aws_cloudwatch_event_target.rebuild_all[0].input_transformer[0].input_template == "{\"allTenants\": true, \"to\": <eventTime>, \"daysBack\": 2}" && aws_cloudwatch_event_target.rebuild_all[0].input_transformer[0].input_paths["eventTime"] == "$.time"
    error_message = "the fleet rebuild body is {allTenants: true, to: event time, daysBack: 2}"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_target.sync_all[0].input).allTenants == true && jsondecode(aws_cloudwatch_event_target.sync_all[0].input).daysBack == 30
    error_message = "the fleet sync body is {allTenants: true, daysBack: 30}"
  }

  assert {
    condition     = aws_cloudwatch_event_target.rebuild_all[0].http_target[0].header_parameters["Prefer"] == "respond-async, wait=3"
    error_message = "the fleet target sends Prefer: respond-async, wait=3 like the others"
  }
}

run "per_tenant_schedules_only" {
  command = plan

  variables {
    fleet_schedule = false
  }

  assert {
    condition     = length(aws_scheduler_schedule.rebuild) == 2 && !contains(keys(aws_scheduler_schedule.rebuild), "all-tenants") && length(aws_cloudwatch_event_rule.rebuild_all) == 0 && length(aws_cloudwatch_event_target.sync_all) == 0
    error_message = "fleet_schedule = false leaves only the per-tenant schedules, without the fleet rules"
  }
}

run "per_tenant_only_needs_a_tenant" {
  command = plan

  variables {
    fleet_schedule      = false
    scheduler_tenant_id = ""
    tenant_ids          = []
  }

  expect_failures = [aws_cloudwatch_event_bus.jobs]
}

run "the_freshness_alarm_watches_the_log_group" {
  command = plan

  variables {
    log_group_name = "/ecs/jobsd"
  }

  assert {
    condition     = aws_cloudwatch_log_metric_filter.freshness_stale[0].log_group_name == "/ecs/jobsd" && aws_cloudwatch_log_metric_filter.freshness_stale[0].pattern == "{ ($.msg = \"[INTERNAL-JOB] freshness\") && ($.level = \"warn\") }"
    error_message = "the metric filter matches jobsd's freshness lines at level warn (some tenant stale)"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.freshness_stale[0].metric_name == "StaleFreshnessChecks" && aws_cloudwatch_metric_alarm.freshness_stale[0].namespace == "jobsd" && aws_cloudwatch_metric_alarm.freshness_stale[0].evaluation_periods == 2 && aws_cloudwatch_metric_alarm.freshness_stale[0].treat_missing_data == "notBreaching"
    error_message = "the alarm fires after two quarter-hours of stale checks"
  }
}

run "no_log_group_no_freshness_alarm" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_log_metric_filter.freshness_stale) == 0 && length(aws_cloudwatch_metric_alarm.freshness_stale) == 0
    error_message = "without log_group_name there is no filter and no alarm"
  }
}

run "the_scheduler_needs_a_base_url" {
  command = plan

  variables {
    jobsd_base_url = ""
  }

  expect_failures = [aws_cloudwatch_event_bus.jobs]
}

run "pausing_pauses_schedules_and_rules" {
  command = plan

  variables {
    schedule_state = "DISABLED"
  }

  assert {
    condition     = alltrue([for s in aws_scheduler_schedule.rebuild : s.state == "DISABLED"]) && alltrue([for s in aws_scheduler_schedule.sync : s.state == "DISABLED"])
    error_message = "schedule_state = DISABLED disables every schedule"
  }

  assert {
    condition     = aws_cloudwatch_event_rule.rebuild[0].state == "DISABLED" && aws_cloudwatch_event_rule.sync[0].state == "DISABLED"
    error_message = "schedule_state = DISABLED disables the rules too, so an apply never re-enables a rule paused by hand"
  }
}

run "the_internal_key_never_enters_the_state" {
  command = plan

  # The connection is created with the placeholder and its value is never managed again
  # (sync-connection-key.sh puts the key): nothing reads the secret's value, so neither the
  # plan nor the state can hold it.
  assert {
    condition     = aws_cloudwatch_event_connection.jobsd[0].auth_parameters[0].api_key[0].value == "unset-run-sync-connection-key"
    error_message = "the connection's API key value must be the placeholder, never read from the secret"
  }

  assert {
    condition     = length(aws_cloudwatch_event_connection.jobsd[0].auth_parameters[0].api_key[0].value) < 32 && !strcontains(aws_cloudwatch_event_connection.jobsd[0].auth_parameters[0].api_key[0].value, ":")
    error_message = "the placeholder must be shorter than any valid INTERNAL_JOBS_KEY (32 bytes) and match EventBridge's ApiKeyValue pattern"
  }
}

# AWS's ranges for both retry policies (Scheduler and EventBridge RetryPolicy):
# MaximumRetryAttempts 0..185, MaximumEventAgeInSeconds 60..86400, integers.
run "retry_bounds_are_accepted" {
  command = plan

  variables {
    retry_attempts            = 185
    maximum_event_age_seconds = 86400
  }

  assert {
    condition     = aws_cloudwatch_event_target.rebuild[0].retry_policy[0].maximum_retry_attempts == 185 && aws_cloudwatch_event_target.rebuild[0].retry_policy[0].maximum_event_age_in_seconds == 86400
    error_message = "the upper bounds reach the rule target"
  }
}

run "retry_lower_bounds_are_accepted" {
  command = plan

  variables {
    retry_attempts            = 0
    maximum_event_age_seconds = 60
  }

  assert {
    condition     = aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].target[0].retry_policy[0].maximum_retry_attempts == 0 && aws_scheduler_schedule.rebuild["3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"].target[0].retry_policy[0].maximum_event_age_in_seconds == 60
    error_message = "the lower bounds reach the schedule"
  }
}

run "retry_attempts_over_185_is_refused" {
  command = plan

  variables {
    retry_attempts = 186
  }

  expect_failures = [var.retry_attempts]
}

run "retry_attempts_negative_is_refused" {
  command = plan

  variables {
    retry_attempts = -1
  }

  expect_failures = [var.retry_attempts]
}

run "retry_attempts_fraction_is_refused" {
  command = plan

  variables {
    retry_attempts = 2.5
  }

  expect_failures = [var.retry_attempts]
}

run "maximum_event_age_under_60_is_refused" {
  command = plan

  variables {
    maximum_event_age_seconds = 59
  }

  expect_failures = [var.maximum_event_age_seconds]
}

run "maximum_event_age_over_86400_is_refused" {
  command = plan

  variables {
    maximum_event_age_seconds = 86401
  }

  expect_failures = [var.maximum_event_age_seconds]
}
