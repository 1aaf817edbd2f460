import { publicUser, ROLES } from '@platform/shared-types';
import { z } from 'zod';
import { THEMES, USER_STATUSES } from '../../documents.ts';
import { newPasswordSchema } from '../../lib/passwords.ts';
import { normaliseEmail } from './users-dal.ts';

/** 3-32 of [a-z0-9_.-], compared case-insensitively. */
export const usernameSchema = z.string().regex(/^[A-Za-z0-9_.-]{3,32}$/, 'must be 3-32 characters of a-z, 0-9, _ . -');
export const emailSchema = z.string().max(320).transform(normaliseEmail).pipe(z.email('must be an email address').max(254));

export const newAccountBody = z
  .strictObject({ username: usernameSchema, email: emailSchema, password: newPasswordSchema })
  .meta({ id: 'SignupRequest', examples: [{ username: 'ada', email: 'ada@example.com', password: 'correct horse battery staple' }] });

export const preferencesSchema = z.strictObject({
  theme: z.enum(THEMES).optional(),
  language: z
    .string()
    .regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8}){0,2}$/, 'must be a language tag like en or pt-BR')
    .optional(),
  emailNotifications: z.boolean().optional(),
  defaultModelId: z.string().min(1).max(64).optional(),
});

export const profileSchema = z
  .object({
    displayName: z.string().nullable(),
    bio: z.string().nullable(),
    avatarUrl: z.string().nullable(),
    preferences: preferencesSchema,
  })
  .meta({ id: 'Profile' });

export const profilePatchBody = z
  .strictObject({
    displayName: z.string().trim().min(1).max(64).nullable().optional(),
    bio: z.string().max(500).nullable().optional(),
    avatarUrl: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .max(2048)
      .nullable()
      .optional(),
    preferences: preferencesSchema.optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'send at least one field');
export type ProfilePatch = z.output<typeof profilePatchBody>;

export const userResponse = z.object({ user: publicUser });
export const meResponse = z.object({ user: publicUser, profile: profileSchema }).meta({ id: 'Me' });
export const roleSchema = z.enum(ROLES);
export const statusSchema = z.enum(USER_STATUSES);
