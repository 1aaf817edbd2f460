// A student's credits and usage over the last 30 UTC days: credits charged and tokens per day (accounting's usage
// stats) and the available balance at the end of each day (the ledger's balanceAfter). A supervisor picks one of
// its students; an admin also any user, found by name or email.
import { api, describe } from '@platform/webapp/api';
import { DAYS, DayChart, daySeries, lastDays } from '@platform/webapp/chart';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type FoundUser as ChartUser, UserSearch } from './user-search.tsx';

interface Stats {
  totals: { requests: number; inputTokens: number; outputTokens: number; credits: number };
  byDay: Array<{ day: string; inputTokens: number; outputTokens: number; credits: number }>;
}
interface LedgerPage {
  total: number;
  transactions: Array<{ balanceAfter: number; createdAt: string }>;
}
interface Charts {
  credits: Map<string, number>;
  tokens: Map<string, number>;
  balance: Map<string, number>;
  available: number;
  totals: Stats['totals'];
  /** the ledger had more entries than were read: days before `since` show no balance */
  since?: string;
}

const LEDGER_LIMIT = 100;
const LEDGER_PAGES = 20;

/**
 * Balance at the end of each of the last 30 days, from the ledger read newest first: a day's level is the
 * balanceAfter of its last entry, else the level the day before ended with (carried forward).
 */
async function balanceByDay(userId: string, days: string[]): Promise<{ balance: Map<string, number>; since?: string }> {
  const first = days[0] as string;
  const endOfDay = new Map<string, number>();
  let before: number | undefined; // the level when the 30 days began
  let complete = false;
  for (let page = 1; page <= LEDGER_PAGES && !complete; page++) {
    const answer = await api<LedgerPage>(`/api/credits/transactions?${new URLSearchParams({ userId, page: String(page), limit: String(LEDGER_LIMIT) })}`);
    for (const entry of answer.transactions) {
      const day = entry.createdAt.slice(0, 10);
      if (day < first) {
        before = entry.balanceAfter;
        complete = true;
        break;
      }
      if (!endOfDay.has(day)) endOfDay.set(day, entry.balanceAfter); // newest first: the day's last entry
    }
    if (page * LEDGER_LIMIT >= answer.total) complete = true;
  }
  const balance = new Map<string, number>();
  let level = complete ? (before ?? 0) : undefined;
  let since: string | undefined;
  for (const day of days) {
    const closing = endOfDay.get(day);
    if (closing !== undefined) level = closing;
    if (level === undefined) continue;
    since ??= complete ? undefined : day;
    balance.set(day, level);
  }
  return { balance, since };
}

async function loadCharts(userId: string): Promise<Charts> {
  const query = new URLSearchParams({ userId });
  const [stats, current, ledger] = await Promise.all([
    api<Stats>(`/api/usage/stats?${query}`),
    api<{ available: number }>(`/api/credits/balance?${query}`),
    balanceByDay(userId, lastDays()),
  ]);
  const day = (iso: string) => iso.slice(0, 10);
  return {
    credits: new Map(stats.byDay.map((d) => [day(d.day), d.credits])),
    tokens: new Map(stats.byDay.map((d) => [day(d.day), d.inputTokens + d.outputTokens])),
    balance: ledger.balance,
    since: ledger.since,
    available: current.available,
    totals: stats.totals,
  };
}

function StudentCharts(props: { students: ChartUser[]; admin: boolean }) {
  const [picked, setPicked] = useState<ChartUser | null>(null);
  const [charts, setCharts] = useState<Charts | null>(null);
  const [error, setError] = useState('');
  const shown = picked ?? props.students[0] ?? null;
  const shownId = shown?.id;
  useEffect(() => {
    setCharts(null);
    setError('');
    if (!shownId) return;
    let current = true;
    loadCharts(shownId)
      .then((loaded) => current && setCharts(loaded))
      .catch((problem: unknown) => current && setError(`Could not load the charts: ${describe(problem)}`));
    return () => {
      current = false;
    };
  }, [shownId]);
  const choices = picked && !props.students.some((s) => s.id === picked.id) ? [...props.students, picked] : props.students;
  return (
    <section class="card" aria-labelledby="charts-title" id="student-charts">
      <div class="section-head">
        <h2 id="charts-title">Credits and usage, last {DAYS} days</h2>
        <form class="inline" onSubmit={(event) => event.preventDefault()}>
          <label for="chart-student">Charts of</label>
          <select
            id="chart-student"
            value={shownId ?? ''}
            onChange={(event) => setPicked(choices.find((s) => s.id === (event.target as HTMLSelectElement).value) ?? null)}
          >
            {choices.length === 0 ? <option value="">No students</option> : null}
            {choices.map((s) => (
              <option key={s.id} value={s.id}>
                {s.username}
              </option>
            ))}
          </select>
        </form>
        {props.admin ? <UserSearch id="chart-user" label="Charts of any user (name or email)" action="Show charts" onPick={setPicked} /> : null}
      </div>
      <p class="error" role="alert">
        {error}
      </p>
      {!shown ? <p class="note">No students to show.</p> : null}
      {shown && !charts && !error ? <p class="note">Loading…</p> : null}
      {shown && charts ? (
        <>
          <p id="chart-totals" data-user={shown.username}>
            <strong>{shown.username}</strong>: {charts.totals.credits} credits charged in {charts.totals.requests} requests (
            {charts.totals.inputTokens + charts.totals.outputTokens} tokens); {charts.available} credits available now.
          </p>
          <div class="charts">
            <DayChart id="chart-credits" unit="credits" title={`Credits charged per day to ${shown.username}`} series={daySeries(charts.credits)} />
            <DayChart id="chart-tokens" unit="tokens" title={`Tokens per day (in and out) of ${shown.username}`} series={daySeries(charts.tokens)} />
            <DayChart
              id="chart-balance"
              kind="line"
              unit="credits"
              title={`Available balance of ${shown.username} at the end of each day`}
              series={lastDays()
                .filter((day) => charts.balance.has(day))
                .map((day) => ({ day, value: charts.balance.get(day) as number }))}
              caption={charts.since ? `Balance at the end of each UTC day since ${charts.since} (older entries not read).` : undefined}
            />
          </div>
        </>
      ) : null}
    </section>
  );
}

/** Draws (or redraws with new students) the charts section into `container`. */
export function showStudentCharts(container: HTMLElement, students: ChartUser[], admin: boolean): void {
  render(<StudentCharts students={students} admin={admin} />, container);
}

export function hideStudentCharts(container: HTMLElement): void {
  render(null, container);
}
