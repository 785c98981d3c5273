// A second, "bring your own resources" setup: JobRunner wired to an imported VPC, two imported
// clusters, an imported bucket, queue and service, as a user with existing infrastructure does.

import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { JobRunner, type JobRunnerProps } from '../lib';
import { testApp } from './support';

export const ENV = { account: '123456789012', region: 'eu-central-1' };

export interface Existing {
  readonly stack: Stack;
  readonly jobRunner: JobRunner;
  readonly template: Template;
  readonly json: Record<string, any>;
}

/**
 * Imports the user's resources and wires a JobRunner to them; `override` adjusts the props, and
 * `extend` adds to the stack before it is synthesized (e.g. a grant).
 */
export function existingResources(
  override: (p: JobRunnerProps) => JobRunnerProps = (p) => p,
  extend: (jobRunner: JobRunner, stack: Stack) => void = () => {},
): Existing {
  const app = testApp();
  const stack = new Stack(app, 'Existing', { env: ENV });
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0a1b2c3d4e5f60789',
    availabilityZones: ['eu-central-1a', 'eu-central-1b'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
    privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaaa', 'rtb-0bbbbbbbbbbbbbbbb'],
  });
  const jobs = ecs.Cluster.fromClusterAttributes(stack, 'Jobs', { clusterName: 'jobs', vpc });
  const batch = ecs.Cluster.fromClusterAttributes(stack, 'Batch', { clusterName: 'batch', vpc });
  const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0');

  const thumbnails = new ecs.FargateTaskDefinition(stack, 'Thumbnails', { family: 'thumbnails', cpu: 512, memoryLimitMiB: 1024 });
  thumbnails.addContainer('app', { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:stable') });
  const report = new ecs.FargateTaskDefinition(stack, 'Report', { family: 'report' });
  const reportContainer = report.addContainer('main', {
    image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:stable'),
  });

  const uploads = s3.Bucket.fromBucketName(stack, 'Uploads', 'uploads');
  const orders = sqs.Queue.fromQueueArn(stack, 'Orders', 'arn:aws:sqs:eu-central-1:123456789012:orders');
  const service = ecs.FargateService.fromFargateServiceAttributes(stack, 'OrderWorkers', {
    cluster: jobs,
    serviceName: 'order-workers',
  });

  const props: JobRunnerProps = {
    defaults: {
      cluster: jobs,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [sg],
      assignPublicIp: false,
      capacity: ['FARGATE_SPOT', 'FARGATE'],
    },
    jobs: {
      thumbnails: {
        taskDefinition: thumbnails,
        container: 'app',
        command: ['resize', '--input', 's3://{bucket}/{key}'],
        environment: { OUTPUT_PREFIX: 'thumbs/' },
        maxRunning: 50,
        tags: { team: 'media' },
        sizeTiers: [
          { maxBytes: 104857600, cpu: 512, memory: 1024 },
          { cpu: 2048, memory: 8192 },
        ],
      },
      report: {
        taskDefinition: report,
        container: reportContainer,
        cluster: batch,
        launchType: 'FARGATE',
        cpu: 256,
        memory: 512,
      },
    },
    s3Triggers: [
      { job: 'thumbnails', bucket: uploads, prefix: 'images/', suffix: '.jpg' },
      { job: 'thumbnails', bucket: uploads, prefix: 'raw/', minSize: 1, maxSize: 1073741824 },
    ],
    schedules: [
      { name: 'hourly-report', job: 'report', expression: 'rate(1 hour)', timezone: 'Europe/Berlin', overlap: 'forbid' },
    ],
    workers: {
      orders: {
        service,
        queue: orders,
        messagesPerTask: 10,
        minTasks: 0,
        maxTasks: 50,
        scaleInAfter: Duration.seconds(300),
      },
    },
    alerts: { emails: ['ops@example.com'], notifyOn: ['non_zero_exit', 'oom', 'failed_to_start', 'spot_interruption'] },
    functions: { architecture: lambda.Architecture.ARM_64 },
  };
  const jobRunner = new JobRunner(stack, 'JobRunner', override(props));
  extend(jobRunner, stack);
  const template = Template.fromStack(stack);
  return { stack, jobRunner, template, json: template.toJSON() };
}
