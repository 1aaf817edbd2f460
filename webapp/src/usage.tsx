// Usage: credits per UTC day and per model over the last 30 days (SVG drawn here), and the ledger.
import { useEffect, useState } from 'preact/hooks';
import { api, describe } from './api.ts';
import { DAYS, DayChart, daySeries } from './chart.tsx';

interface Bucket {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  credits: number;
}
interface Stats {
  from: string;
  to: string;
  totals: Bucket;
  byDay: Array<Bucket & { day: string }>;
  byModel: Array<Bucket & { modelId: string }>;
}
interface Transaction {
  id: string;
  type: string;
  amount: number;
  balanceAfter: number;
  reference: string | null;
  createdAt: string;
}

const PAGE = 20;

function ModelBars(props: { models: Stats['byModel'] }) {
  const max = Math.max(1, ...props.models.map((m) => m.credits));
  if (props.models.length === 0) return <p class="note">No usage in the last {DAYS} days.</p>;
  return (
    <section class="table-wrap" aria-label="Credits per model" tabindex={0}>
      <table class="model-bars">
        <caption class="visually-hidden">Credits per model, last {DAYS} days</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Credits</th>
            <th scope="col">Requests</th>
            <th scope="col">Tokens in / out</th>
          </tr>
        </thead>
        <tbody>
          {props.models.map((m) => (
            <tr key={m.modelId} data-model-id={m.modelId}>
              <th scope="row">{m.modelId}</th>
              <td>
                <svg viewBox="0 0 100 10" class="inline-bar" aria-hidden="true" preserveAspectRatio="none">
                  <rect x={0} y={0} height={10} width={Math.max(1, (100 * m.credits) / max)} class="bar" />
                </svg>{' '}
                <span class="figure">{m.credits}</span>
              </td>
              <td>{m.requests}</td>
              <td>
                {m.inputTokens} / {m.outputTokens}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function UsageScreen() {
  const [stats, setStats] = useState<Stats | null>(null);
  const [transactions, setTransactions] = useState<{ list: Transaction[]; total: number }>({ list: [], total: 0 });
  const [page, setPage] = useState(1);
  const [error, setError] = useState('');

  useEffect(() => {
    api<Stats>('/api/usage/stats')
      .then(setStats)
      .catch((problem: unknown) => setError(`Could not load usage: ${describe(problem)}`));
  }, []);
  useEffect(() => {
    api<{ transactions: Transaction[]; total: number }>(`/api/credits/transactions?page=${page}&limit=${PAGE}`)
      .then((answer) => setTransactions({ list: answer.transactions, total: answer.total }))
      .catch((problem: unknown) => setError(`Could not load transactions: ${describe(problem)}`));
  }, [page]);

  const pages = Math.max(1, Math.ceil(transactions.total / PAGE));
  return (
    <>
      <section class="card" aria-labelledby="usage-title">
        <h2 id="usage-title">Usage, last {DAYS} days</h2>
        <p class="error" role="alert">
          {error}
        </p>
        {stats ? (
          <>
            <p id="usage-totals">
              <strong>{stats.totals.credits}</strong> credits in {stats.totals.requests} requests ({stats.totals.inputTokens} tokens in,{' '}
              {stats.totals.outputTokens} out).
            </p>
            <DayChart
              id="day-chart"
              unit="credits"
              title={`Credits per day over the last ${DAYS} days: ${stats.totals.credits} in all`}
              caption={`Credits per UTC day, last ${DAYS} days.`}
              series={daySeries(new Map(stats.byDay.map((d) => [d.day.slice(0, 10), d.credits])))}
            />
            <h3>Per model</h3>
            <ModelBars models={stats.byModel} />
          </>
        ) : (
          <p class="note">Loading…</p>
        )}
      </section>
      <section class="card" aria-labelledby="transactions-title">
        <h2 id="transactions-title">Transactions</h2>
        <section class="table-wrap" aria-label="Transactions" tabindex={0}>
          <table id="transactions-table">
            <caption class="visually-hidden">Your credit transactions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Type</th>
                <th scope="col">Credits</th>
                <th scope="col">Balance after</th>
              </tr>
            </thead>
            <tbody>
              {transactions.list.map((t) => (
                <tr key={t.id} data-type={t.type}>
                  <td>{new Date(t.createdAt).toLocaleString()}</td>
                  <td>{t.type}</td>
                  <td class={t.amount < 0 ? 'negative' : 'positive'}>{t.amount > 0 ? `+${t.amount}` : t.amount}</td>
                  <td>{t.balanceAfter}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        {transactions.list.length === 0 ? <p class="note">No transactions yet.</p> : null}
        <nav class="pager" aria-label="Transaction pages">
          <button type="button" class="secondary" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span>
            Page {page} of {pages}
          </span>
          <button type="button" class="secondary" disabled={page >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </nav>
      </section>
    </>
  );
}
