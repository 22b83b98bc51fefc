# Least privilege: the schedules may only put events on this bus (and dead-letter into their
# queue); the rules may only invoke these API destinations. Both trust policies accept only
# the service acting for this account (confused-deputy protection).

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count = var.enable_scheduler ? 1 : 0

  name               = "${var.name_prefix}-scheduler"
  description        = "EventBridge Scheduler: PutEvents on the ${var.name_prefix}-jobs bus"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  count = var.enable_scheduler ? 1 : 0

  statement {
    sid       = "PutEventsOnTheJobsBus"
    effect    = "Allow"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.jobs[0].arn]
  }

  statement {
    sid       = "DeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scheduler_dlq[0].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = var.enable_scheduler ? 1 : 0

  name   = "put-events"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler[0].json
}

data "aws_iam_policy_document" "events_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "events" {
  count = var.enable_scheduler ? 1 : 0

  name               = "${var.name_prefix}-events-api-destinations"
  description        = "EventBridge rules on the ${var.name_prefix}-jobs bus: invoke the jobsd API destinations"
  assume_role_policy = data.aws_iam_policy_document.events_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "events" {
  count = var.enable_scheduler ? 1 : 0

  statement {
    sid     = "InvokeJobsdApiDestinations"
    effect  = "Allow"
    actions = ["events:InvokeApiDestination"]
    resources = concat(
      [aws_cloudwatch_event_api_destination.rebuild[0].arn],
      aws_cloudwatch_event_api_destination.sync[*].arn,
    )
  }
}

resource "aws_iam_role_policy" "events" {
  count = var.enable_scheduler ? 1 : 0

  name   = "invoke-api-destinations"
  role   = aws_iam_role.events[0].id
  policy = data.aws_iam_policy_document.events[0].json
}
