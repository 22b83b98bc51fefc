# jobsd on AWS App Runner, for accounts that already use it (App Runner is closed to new
# customers since 2026-04-30; new deployments use ../jobsd-ecs). App Runner terminates TLS,
# checks GET /healthz, injects the secrets, and limits a request to 120 s.

data "aws_partition" "current" {}

locals {
  environment = merge(
    {
      PORT              = "8080"
      BIND_ADDRESS      = "0.0.0.0"
      LOG_FORMAT        = "json"
      SYNC_WAIT_SECONDS = tostring(var.sync_wait_seconds)
      # Every connection comes from App Runner's proxies: no per-address limit.
      PER_IP_CONNECTIONS = "0"
    },
    var.environment,
  )
}

# Lets App Runner pull the image from the account's private ECR.
data "aws_iam_policy_document" "access_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["build.apprunner.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "access" {
  name               = "${var.name}-apprunner-ecr-access"
  assume_role_policy = data.aws_iam_policy_document.access_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "access" {
  role       = aws_iam_role.access.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSAppRunnerServicePolicyForECRAccess"
}

# The instance role reads the secrets App Runner injects.
data "aws_iam_policy_document" "instance_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["tasks.apprunner.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name}-apprunner-instance"
  assume_role_policy = data.aws_iam_policy_document.instance_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "instance_secrets" {
  statement {
    sid       = "ReadJobsdSecrets"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = distinct(values(var.secret_arns))
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "DecryptJobsdSecrets"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = var.kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "instance_secrets" {
  name   = "jobsd-secrets"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance_secrets.json
}

resource "aws_apprunner_service" "jobsd" {
  service_name = var.name
  tags         = var.tags

  source_configuration {
    auto_deployments_enabled = false

    authentication_configuration {
      access_role_arn = aws_iam_role.access.arn
    }

    image_repository {
      image_identifier      = var.image
      image_repository_type = "ECR"

      image_configuration {
        port                          = "8080"
        runtime_environment_variables = local.environment
        runtime_environment_secrets   = var.secret_arns
      }
    }
  }

  instance_configuration {
    cpu               = var.cpu
    memory            = var.memory
    instance_role_arn = aws_iam_role.instance.arn
  }

  health_check_configuration {
    protocol            = "HTTP"
    path                = "/healthz"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 1
    unhealthy_threshold = 5
  }

  network_configuration {
    egress_configuration {
      egress_type       = var.vpc_connector_arn == null ? "DEFAULT" : "VPC"
      vpc_connector_arn = var.vpc_connector_arn
    }
  }

  depends_on = [aws_iam_role_policy.instance_secrets, aws_iam_role_policy_attachment.access]
}
