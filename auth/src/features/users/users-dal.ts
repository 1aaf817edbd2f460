import type { PublicUser, Role } from '@platform/shared-types';
import { withLock } from '@platform/shared-types/redis';
import type { Redis } from 'ioredis';
import { isValidObjectId, type Types } from 'mongoose';
import type { Models, Preferences, UserDoc, UserStatus } from '../../documents.ts';

export function normaliseEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

export function usernameKey(username: string): string {
  return username.trim().toLowerCase();
}

export function toPublicUser(user: UserDoc): PublicUser {
  return {
    id: user._id.toString(),
    username: user.username,
    email: user.email,
    role: user.role,
    status: user.status,
    emailVerified: user.emailVerified,
    ...(user.displayName ? { displayName: user.displayName } : {}),
    createdAt: user.createdAt.toISOString(),
  };
}

export interface Profile {
  displayName: string | null;
  bio: string | null;
  avatarUrl: string | null;
  preferences: Preferences;
}

export function toProfile(user: UserDoc): Profile {
  return { displayName: user.displayName ?? null, bio: user.bio ?? null, avatarUrl: user.avatarUrl ?? null, preferences: user.preferences ?? {} };
}

/** The `{ user, profile }` answer of /me, /api/profile and an admin's read of one user. */
export function userWithProfile(user: UserDoc) {
  return { user: toPublicUser(user), profile: toProfile(user) };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Data access for users. Every filter value is a string checked by the caller's schema, never a client object. */
export function usersDal(models: Models, redis: Redis, keyPrefix: string) {
  const { User } = models;
  return {
    async findById(id: string): Promise<UserDoc | null> {
      if (!isValidObjectId(id)) return null;
      return User.findById(id).lean<UserDoc>();
    },
    findByEmail(email: string): Promise<UserDoc | null> {
      return User.findOne({ email: normaliseEmail(email) }).lean<UserDoc>();
    },
    findByUsername(username: string): Promise<UserDoc | null> {
      return User.findOne({ usernameKey: usernameKey(username) }).lean<UserDoc>();
    },
    async findTaken(username: string, email: string): Promise<{ username: boolean; email: boolean }> {
      const [byName, byEmail] = await Promise.all([User.exists({ usernameKey: usernameKey(username) }), User.exists({ email: normaliseEmail(email) })]);
      return { username: byName !== null, email: byEmail !== null };
    },
    async create(input: { username: string; email: string; passwordHash: string; role: Role; emailVerified: boolean }): Promise<UserDoc> {
      const now = new Date();
      const created = await User.create({
        username: input.username.trim(),
        usernameKey: usernameKey(input.username),
        email: normaliseEmail(input.email),
        passwordHash: input.passwordHash,
        role: input.role,
        status: 'active',
        emailVerified: input.emailVerified,
        emailVerifiedAt: input.emailVerified ? now : null,
        preferences: {},
      });
      return created.toObject() as UserDoc;
    },
    deleteById(id: Types.ObjectId): Promise<unknown> {
      return User.deleteOne({ _id: id });
    },
    /**
     * Applies `set` when the user still matches `condition`; returns the updated user or null. Serialised per
     * user through a Redis lock (see withLock), so the condition check and the write are not interleaved.
     */
    update(id: Types.ObjectId | string, set: Partial<UserDoc>, condition: Record<string, unknown> = {}): Promise<UserDoc | null> {
      return withLock(redis, `${keyPrefix}user-lock:${String(id)}`, () =>
        User.findOneAndUpdate({ _id: id, ...condition }, { $set: set }, { returnDocument: 'after', runValidators: true }).lean<UserDoc>(),
      );
    },
    async findMany(ids: string[]): Promise<UserDoc[]> {
      const valid = ids.filter((id) => isValidObjectId(id));
      if (valid.length === 0) return [];
      return User.find({ _id: { $in: valid } }).lean<UserDoc[]>();
    },
    countActiveAdmins(): Promise<number> {
      return User.countDocuments({ role: 'admin', status: 'active' });
    },
    async list(filter: { search?: string; role?: Role; status?: UserStatus; page: number; limit: number }): Promise<{ users: UserDoc[]; total: number }> {
      const query: Record<string, unknown> = {};
      if (filter.role) query.role = filter.role;
      if (filter.status) query.status = filter.status;
      if (filter.search) {
        const pattern = new RegExp(escapeRegex(filter.search.trim().toLowerCase()), 'i');
        query.$or = [{ usernameKey: pattern }, { email: pattern }, { displayName: pattern }];
      }
      const [users, total] = await Promise.all([
        User.find(query)
          .sort({ createdAt: -1, _id: -1 })
          .skip((filter.page - 1) * filter.limit)
          .limit(filter.limit)
          .lean<UserDoc[]>(),
        User.countDocuments(query),
      ]);
      return { users, total };
    },
  };
}

export type UsersDal = ReturnType<typeof usersDal>;
