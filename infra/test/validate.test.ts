// The TypeScript construct and the Rust config schema cannot drift: the config the construct
// generates (evaluated as CloudFormation would deploy it) must pass `jobrunner validate`.
//
// The CLI is JOBRUNNER_BIN, else ../target/debug/jobrunner, built with `cargo build -p
// jobrunner-cli` when missing. A CLI that cannot be built fails these tests (never skips them).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { existingResources } from './fixtures';
import { deployedConfigs, jobrunnerBinary, synthExample } from './support';

let bin: string;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrunner-config-'));

function validate(name: string, config: string): { status: number | null; output: string } {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, config);
  const run = spawnSync(bin, ['validate', '--config', file], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('jobrunner validate accepts the generated config', () => {
  before(() => {
    bin = jobrunnerBinary();
  });

  test('of the example stack', () => {
    const configs = Object.values(deployedConfigs(synthExample().json));
    assert.equal(configs.length, 3);
    const result = validate('example', configs[0]);
    assert.equal(result.status, 0, result.output);
  });

  test('of a stack wired to existing resources (two clusters, size filters, launch type)', () => {
    const result = validate('existing', Object.values(deployedConfigs(existingResources().json))[0]);
    assert.equal(result.status, 0, result.output);
  });

  test('with every optional section left out', () => {
    const minimal = existingResources((p) => ({ defaults: p.defaults, jobs: { report: p.jobs!.report } }));
    const result = validate('minimal', Object.values(deployedConfigs(minimal.json))[0]);
    assert.equal(result.status, 0, result.output);
  });

  test('and rejects a field the Rust schema does not know (the check is real)', () => {
    const config = JSON.parse(Object.values(deployedConfigs(synthExample().json))[0]);
    config.jobs['process-upload'].no_such_field = 1;
    const result = validate('unknown-field', JSON.stringify(config));
    assert.notEqual(result.status, 0);
    assert.match(result.output, /no_such_field/);
  });
  test('and names a missedScheduleAfter that is not a duration (the construct passes it through as written)', () => {
    const e = existingResources((p) => ({ ...p, alerts: { ...p.alerts, missedScheduleAfter: 'ten minutes' } }));
    const result = validate('missed-schedule-after', Object.values(deployedConfigs(e.json))[0]);
    assert.notEqual(result.status, 0);
    assert.match(result.output, /alerts\.missed_schedule_after/);
  });
});
