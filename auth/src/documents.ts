/** The MongoDB documents auth stores (users, refresh tokens, one-time tokens, API keys): their types, mongoose schemas and models. */
import { ROLES, type Role } from '@platform/shared-types';
import mongoose, { type Model, Schema, type Types } from 'mongoose';

export const USER_STATUSES = ['active', 'disabled'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];
export const THEMES = ['light', 'dark', 'system'] as const;

export interface Preferences {
  theme?: (typeof THEMES)[number];
  language?: string;
  emailNotifications?: boolean;
  defaultModelId?: string;
}

export interface UserDoc {
  _id: Types.ObjectId;
  /** as the user typed it */
  username: string;
  /** lower-cased: unique, used for login */
  usernameKey: string;
  /** normalised (trimmed, lower-cased): unique */
  email: string;
  passwordHash: string;
  role: Role;
  status: UserStatus;
  emailVerified: boolean;
  emailVerifiedAt?: Date | null;
  passwordChangedAt?: Date | null;
  displayName?: string | null;
  bio?: string | null;
  avatarUrl?: string | null;
  preferences: Preferences;
  createdAt: Date;
  updatedAt: Date;
}

export const REFRESH_STATUSES = ['active', 'rotated', 'revoked'] as const;

export interface RefreshTokenDoc {
  _id: Types.ObjectId;
  /** SHA-256 of the token: the token itself is never stored */
  tokenHash: string;
  userId: Types.ObjectId;
  family: string;
  /** when the family's first token was issued (a sign-in); null on tokens stored before this field existed */
  familyStartedAt?: Date | null;
  status: (typeof REFRESH_STATUSES)[number];
  device: { userAgent?: string | null; ip?: string | null };
  expiresAt: Date;
  /** the access token issued with this refresh token, so revoking the family can revoke it too */
  accessJti: string;
  accessExpiresAt: Date;
  rotatedAt?: Date | null;
  revokedAt?: Date | null;
  createdAt: Date;
}

export const ONE_TIME_KINDS = ['verify-email', 'reset-password'] as const;
export type OneTimeKind = (typeof ONE_TIME_KINDS)[number];

export interface OneTimeTokenDoc {
  _id: Types.ObjectId;
  tokenHash: string;
  kind: OneTimeKind;
  userId: Types.ObjectId;
  expiresAt: Date;
  usedAt: Date | null;
  createdAt: Date;
}

const userSchema = new Schema<UserDoc>(
  {
    username: { type: String, required: true },
    usernameKey: { type: String, required: true, unique: true },
    email: { type: String, required: true, unique: true },
    passwordHash: { type: String, required: true },
    role: { type: String, enum: ROLES, required: true, default: 'enduser' },
    status: { type: String, enum: USER_STATUSES, required: true, default: 'active' },
    emailVerified: { type: Boolean, required: true, default: false },
    emailVerifiedAt: { type: Date, default: null },
    passwordChangedAt: { type: Date, default: null },
    displayName: { type: String, default: null },
    bio: { type: String, default: null },
    avatarUrl: { type: String, default: null },
    preferences: { type: Schema.Types.Mixed, default: () => ({}) },
  },
  { timestamps: true, minimize: false, strict: 'throw' },
);
userSchema.index({ role: 1, status: 1 });

const refreshTokenSchema = new Schema<RefreshTokenDoc>(
  {
    tokenHash: { type: String, required: true, unique: true },
    userId: { type: Schema.Types.ObjectId, required: true, index: true },
    family: { type: String, required: true, index: true },
    familyStartedAt: { type: Date, default: null },
    status: { type: String, enum: REFRESH_STATUSES, required: true, default: 'active' },
    device: { userAgent: { type: String, default: null }, ip: { type: String, default: null } },
    expiresAt: { type: Date, required: true, index: true },
    accessJti: { type: String, required: true, index: true },
    accessExpiresAt: { type: Date, required: true },
    rotatedAt: { type: Date, default: null },
    revokedAt: { type: Date, default: null },
  },
  { timestamps: { createdAt: true, updatedAt: false }, strict: 'throw' },
);

const oneTimeTokenSchema = new Schema<OneTimeTokenDoc>(
  {
    tokenHash: { type: String, required: true, unique: true },
    kind: { type: String, enum: ONE_TIME_KINDS, required: true },
    userId: { type: Schema.Types.ObjectId, required: true, index: true },
    expiresAt: { type: Date, required: true, index: true },
    usedAt: { type: Date, default: null },
  },
  { timestamps: { createdAt: true, updatedAt: false }, strict: 'throw' },
);

export interface ApiKeyDoc {
  _id: Types.ObjectId;
  userId: Types.ObjectId;
  name: string;
  /** SHA-256 hex of the key: the key itself is never stored */
  keyHash: string;
  /** the first characters of the key, shown in listings */
  prefix: string;
  expiresAt: Date | null;
  creditLimit: number | null;
  /** kept (not removed) so spend and transactions still name the key */
  deletedAt: Date | null;
  createdAt: Date;
}

const apiKeySchema = new Schema<ApiKeyDoc>(
  {
    userId: { type: Schema.Types.ObjectId, required: true, index: true },
    name: { type: String, required: true },
    keyHash: { type: String, required: true, unique: true },
    prefix: { type: String, required: true },
    expiresAt: { type: Date, default: null },
    creditLimit: { type: Number, default: null },
    deletedAt: { type: Date, default: null },
  },
  { timestamps: { createdAt: true, updatedAt: false }, strict: 'throw' },
);

export interface Models {
  User: Model<UserDoc>;
  RefreshToken: Model<RefreshTokenDoc>;
  OneTimeToken: Model<OneTimeTokenDoc>;
  ApiKey: Model<ApiKeyDoc>;
}

/** Binds the models to one connection and builds their indexes (unique indexes back the 409s). */
export async function createModels(connection: mongoose.Connection): Promise<Models> {
  const models: Models = {
    User: connection.model<UserDoc>('User', userSchema),
    RefreshToken: connection.model<RefreshTokenDoc>('RefreshToken', refreshTokenSchema),
    OneTimeToken: connection.model<OneTimeTokenDoc>('OneTimeToken', oneTimeTokenSchema),
    ApiKey: connection.model<ApiKeyDoc>('ApiKey', apiKeySchema),
  };
  await Promise.all(Object.values(models).map((model: Model<unknown>) => model.init()));
  return models;
}

export function isDuplicateKeyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}
