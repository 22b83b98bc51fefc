terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }

  # State holds the internal key (the EventBridge connection's API key value): keep it in an
  # encrypted, access-controlled bucket. Configure with:
  #   terraform init -backend-config=backend.hcl   (see backend.hcl.example)
  backend "s3" {}
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = var.tags
  }
}
