// `make create-user EMAIL= USERNAME= PASSWORD= ROLE=`: creates a verified user directly in MongoDB (the first admin).
// Usage: node src/cli/create-user.ts --email E --username U --password P [--role admin|supervisor|enduser]
import { parseArgs } from 'node:util';
import { ApiError, createLogger, type PublicUser, parseConfig } from '@platform/shared-types';
import { buildServices } from '../app.ts';
import { configSchema } from '../config.ts';
import { createContext } from '../context.ts';
import { newAccountBody, roleSchema } from '../features/users/schemas.ts';
import { toPublicUser } from '../features/users/users-dal.ts';
import { connectStores } from '../stores.ts';

const argsSchema = newAccountBody.extend({ role: roleSchema.default('enduser') });

/** Parses the arguments, creates the user, and returns it; throws ApiError (VALIDATION_FAILED, CONFLICT) on refusal. */
export async function createUserFromCli(argv: string[], env: Record<string, string | undefined>): Promise<PublicUser> {
  const { values } = parseArgs({
    args: argv,
    options: { email: { type: 'string' }, username: { type: 'string' }, password: { type: 'string' }, role: { type: 'string' } },
    strict: true,
  });
  const input = argsSchema.safeParse({ ...values, role: values.role || undefined });
  if (!input.success) {
    throw new ApiError('VALIDATION_FAILED', 'Invalid arguments', {
      errors: input.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    });
  }
  const parsed = parseConfig(configSchema, env);
  if (!parsed.ok) throw new Error(`invalid configuration:\n  ${parsed.issues.join('\n  ')}`);
  const config = parsed.config;
  const logger = createLogger('auth-cli', { level: config.LOG_LEVEL ?? 'warn', nodeEnv: config.NODE_ENV });
  const stores = await connectStores(config);
  try {
    const ctx = createContext(config, logger, stores);
    const { accounts } = buildServices(ctx);
    const user = await accounts.createUser({ ...input.data, emailVerified: true });
    await ctx.events.append('user.registered', user);
    return toPublicUser(user);
  } finally {
    await stores.close();
  }
}

if (import.meta.main) {
  try {
    const user = await createUserFromCli(process.argv.slice(2), process.env);
    process.stdout.write(`created ${user.role} ${user.username} <${user.email}> (id ${user.id}, email verified)\n`);
    process.exit(0);
  } catch (error) {
    if (error instanceof ApiError) {
      const details = (error.errors ?? []).map((e) => `\n  - ${e.path}: ${e.message}`).join('');
      process.stderr.write(`create-user: ${error.message}${details}\n`);
      process.exit(error.code === 'CONFLICT' ? 3 : 2);
    }
    process.stderr.write(`create-user failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
