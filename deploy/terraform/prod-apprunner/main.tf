# App Runner variant, for AWS accounts that already use App Runner (closed to new customers
# since 2026-04-30; everyone else: ../prod, ECS Fargate). Same scheduler module, same steps:
#
#   terraform init -backend-config=backend.hcl
#   terraform apply
#   aws secretsmanager put-secret-value --secret-id prod/INTERNAL_JOBS_KEY \
#     --secret-string file://internal_jobs_key.txt
#   terraform apply -var="enable_scheduler=true"     # one fleet schedule per job

module "scheduler" {
  source = "../modules/jobsd-scheduler"

  name_prefix          = var.name_prefix
  enable_scheduler     = var.enable_scheduler
  scheduler_tenant_id  = var.scheduler_tenant_id
  tenant_ids           = var.tenant_ids
  jobsd_base_url       = coalesce(var.jobsd_base_url, module.apprunner.service_url)
  schedule_state       = var.schedule_state
  enable_sync_schedule = var.enable_sync_schedule
  alarm_emails         = var.alarm_emails
  # The freshness filter and alarm on the service's application log group.
  log_group_name = module.apprunner.log_group_name
}

locals {
  optional_secrets = {
    INTERNAL_JOBS_KEY_PREVIOUS = var.internal_jobs_key_previous_secret_arn
    JWT_SECRET                 = var.jwt_secret_arn
    ML_CLIENT_SECRET           = var.ml_client_secret_arn
  }
}

module "apprunner" {
  source = "../modules/jobsd-apprunner"

  name              = var.name_prefix
  image             = var.image
  vpc_connector_arn = var.vpc_connector_arn

  secret_arns = merge(
    {
      INTERNAL_JOBS_KEY = module.scheduler.internal_jobs_key_secret_arn
      DATABASE_URL      = var.database_url_secret_arn
    },
    { for k, v in local.optional_secrets : k => v if v != null },
  )

  environment = {
    JOBS_TIMEZONE = "America/Sao_Paulo"
    ML_CLIENT_ID  = var.ml_client_id
  }
}
