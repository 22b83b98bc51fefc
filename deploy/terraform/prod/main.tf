# Production example: jobsd on ECS Fargate behind an HTTPS load balancer, and the EventBridge
# path (Scheduler -> bus -> rule -> API destination) that triggers the daily jobs.
#
#   terraform init -backend-config=backend.hcl
#   terraform apply                                   # secret, alarm topic, runtime
#   aws secretsmanager put-secret-value --secret-id prod/INTERNAL_JOBS_KEY \
#     --secret-string file://internal_jobs_key.txt    # see ../README.md
#   terraform apply -var="enable_scheduler=true"     # one fleet schedule per job
#
# Onboarding a tenant is no Terraform change: the fleet schedules send {"allTenants": true}.

module "scheduler" {
  source = "../modules/jobsd-scheduler"

  name_prefix          = var.name_prefix
  enable_scheduler     = var.enable_scheduler
  scheduler_tenant_id  = var.scheduler_tenant_id
  tenant_ids           = var.tenant_ids
  jobsd_base_url       = var.jobsd_base_url
  schedule_state       = var.schedule_state
  enable_sync_schedule = var.enable_sync_schedule
  alarm_emails         = var.alarm_emails
  fleet_schedule       = var.fleet_schedule
  log_group_name       = module.ecs.log_group_name
}

locals {
  optional_secrets = {
    INTERNAL_JOBS_KEY_PREVIOUS = var.internal_jobs_key_previous_secret_arn
    JWT_SECRET                 = var.jwt_secret_arn
    ML_CLIENT_SECRET           = var.ml_client_secret_arn
  }

  secret_arns = merge(
    {
      INTERNAL_JOBS_KEY = module.scheduler.internal_jobs_key_secret_arn
      DATABASE_URL      = var.database_url_secret_arn
    },
    { for k, v in local.optional_secrets : k => v if v != null },
  )
}

module "ecs" {
  source = "../modules/jobsd-ecs"

  name               = var.name_prefix
  aws_region         = var.aws_region
  image              = var.image
  vpc_id             = var.vpc_id
  alb_subnet_ids     = var.alb_subnet_ids
  service_subnet_ids = var.service_subnet_ids
  certificate_arn    = var.certificate_arn
  desired_count      = var.desired_count
  secret_arns        = local.secret_arns

  environment = {
    JOBS_TIMEZONE = "America/Sao_Paulo"
    ML_CLIENT_ID  = var.ml_client_id
  }
}

resource "aws_route53_record" "jobsd" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = regex("^https://([^/:]+)", var.jobsd_base_url)[0]
  type    = "A"

  alias {
    name                   = module.ecs.alb_dns_name
    zone_id                = module.ecs.alb_zone_id
    evaluate_target_health = true
  }
}
