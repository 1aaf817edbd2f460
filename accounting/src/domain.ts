/**
 * Accounting's domain constants: the kinds of ledger entry, the states of a streaming reservation, and the largest
 * amount of credits one allocation, deduction or price may name. The API's schemas and the tables' CHECK constraints
 * (migration 002) are built from these lists, so the two cannot disagree.
 */
export const LEDGER_TYPES = ['allocation', 'deduction', 'reservation', 'release', 'charge', 'refund', 'expiry', 'adjustment'] as const;
export type LedgerType = (typeof LEDGER_TYPES)[number];

export const RESERVATION_STATUSES = ['open', 'finalized', 'aborted', 'expired'] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

export const MAX_CREDITS = 1_000_000_000;
