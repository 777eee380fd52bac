import { compilePolicyDirectory } from '../bundle/format/compile-policy-directory.js';
import { cedar } from '../cedar/cedar-wasm.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import { describeError, isUserError } from './describe-error.js';

export const validateCommand: Command = {
  path: ['validate'],
  summary: 'parse and validate a policy directory (schema, entities, annotations)',
  usage: 'validate DIR',
  args: ['DIR'],
  options: {},
  async run(_values, positionals) {
    const dir = positionals[0];
    if (!dir) throw new UsageError('validate needs a policy directory');
    try {
      const set = await compilePolicyDirectory(dir);
      const shadow = [...set.policies.values()].filter((p) => p.annotations.shadow).length;
      process.stdout.write(
        `OK ${dir}: ${set.policies.size} policies${shadow ? ` (${shadow} shadow)` : ''}, ${set.entities.size} entities, ` +
          `${set.hasSchema ? 'validated against schema.cedarschema' : 'no schema'}; version ${set.version}; Cedar ${cedar.getCedarVersion()}\n`,
      );
      return 0;
    } catch (err) {
      if (!isUserError(err)) throw err;
      process.stderr.write(`INVALID ${dir}: ${describeError(err)}\n`);
      return 1;
    }
  },
};
