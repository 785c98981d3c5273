// The example app as the CDK CLI runs it: bin/app.ts synthesizes (cdk-nag on, bundling
// skipped), its context is read, and the pinned 2.x CLI accepts the cloud assembly.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cdkJsonContext, INFRA_DIR, resourcesOfType } from './support';

const temps: string[] = [];
after(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

function runApp(context: Record<string, unknown>): { status: number | null; output: string; outdir: string } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrunner-app-'));
  temps.push(outdir);
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join('bin', 'app.ts')], {
    cwd: INFRA_DIR,
    encoding: 'utf8',
    env: {
      ...process.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...context }),
    },
  });
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}`, outdir };
}

describe('bin/app.ts', () => {
  const synth = runApp({ alertEmails: 'ops@example.com, oncall@example.com', architecture: 'x86_64' });

  test('synthesizes with cdk-nag enabled and no finding', () => {
    assert.equal(synth.status, 0, synth.output);
    assert.ok(!/AwsSolutions-/.test(synth.output), synth.output);
  });

  test('reads alertEmails and architecture from context', () => {
    const template = JSON.parse(fs.readFileSync(path.join(synth.outdir, 'JobRunnerExample.template.json'), 'utf8'));
    // Each address is subscribed to the alert topic and to the alarm topic.
    const emails = resourcesOfType(template, 'AWS::SNS::Subscription')
      .map(([, r]) => `${r.Properties.TopicArn.Ref.replace(/[0-9A-F]{8}$/, '')} ${r.Properties.Endpoint}`)
      .sort();
    assert.deepEqual(emails, [
      'JobRunnerAlertTopic oncall@example.com',
      'JobRunnerAlertTopic ops@example.com',
      'JobRunnerAlertTopicAlarmTopic oncall@example.com',
      'JobRunnerAlertTopicAlarmTopic ops@example.com',
    ]);
    const arches = resourcesOfType(template, 'AWS::Lambda::Function')
      .filter(([, r]) => String(r.Properties.Description ?? '').startsWith('jobrunner '))
      .map(([, r]) => r.Properties.Architectures);
    assert.deepEqual(arches, [['x86_64'], ['x86_64'], ['x86_64']]);
  });

  test('rejects an unknown architecture', () => {
    const bad = runApp({ architecture: 'mips' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.output, /context architecture: arm64 or x86_64/);
  });

  test('the pinned aws-cdk CLI reads the cloud assembly', () => {
    const cli = path.join(INFRA_DIR, 'node_modules', '.bin', 'cdk');
    const ls = spawnSync(cli, ['ls', '--app', synth.outdir], { cwd: INFRA_DIR, encoding: 'utf8' });
    if (ls.error) throw ls.error;
    assert.equal(ls.status, 0, `${ls.stdout}${ls.stderr}`);
    assert.match(ls.stdout, /^JobRunnerExample$/m);
  });
});
