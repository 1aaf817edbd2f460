// Per-day charts drawn as SVG here (no chart library, nothing loaded at run time): the web app's usage page and the
// dashboard's student charts. Each bar or point carries data-day and data-value for people who read the numbers.
export const DAYS = 30;
const DAY_MS = 86_400_000;

export interface DayPoint {
  day: string;
  value: number;
}

/** the last `days` UTC days, oldest first, as YYYY-MM-DD */
export function lastDays(now = new Date(), days = DAYS): string[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: days }, (_, i) => new Date(today - (days - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

/** A value per day of the last 30 UTC days, 0 for the days `byDay` does not name. */
export function daySeries(byDay: Map<string, number>, now = new Date()): DayPoint[] {
  return lastDays(now).map((day) => ({ day, value: byDay.get(day) ?? 0 }));
}

const WIDTH = 600;
const HEIGHT = 200;
const LEFT = 48;
const BOTTOM = 24;

/**
 * Bars (amounts per day) or a line (a level at the end of each day, like a balance) over the days of `series`.
 * `id` names the title for aria-labelledby; `unit` is what a value counts ("credits", "tokens").
 */
export function DayChart(props: { id: string; series: DayPoint[]; unit: string; title: string; kind?: 'bars' | 'line'; caption?: string }) {
  const { series, unit, kind = 'bars' } = props;
  const max = Math.max(1, ...series.map((d) => d.value));
  const step = (WIDTH - LEFT) / series.length;
  const plot = HEIGHT - BOTTOM - 8;
  const y = (value: number) => HEIGHT - BOTTOM - (plot * Math.max(0, value)) / max;
  const x = (i: number) => LEFT + i * step + step / 2;
  const peak = series.length ? Math.max(...series.map((d) => d.value)) : 0;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby={`${props.id}-title`} class="chart-svg" data-chart={props.id}>
        <title id={`${props.id}-title`}>{`${props.title}: at most ${peak} ${unit} in a day`}</title>
        <line x1={LEFT} y1={HEIGHT - BOTTOM} x2={WIDTH} y2={HEIGHT - BOTTOM} class="axis" />
        <text x={LEFT - 6} y={12} class="tick" text-anchor="end">
          {max}
        </text>
        <text x={LEFT - 6} y={HEIGHT - BOTTOM} class="tick" text-anchor="end">
          0
        </text>
        {kind === 'line' ? <polyline class="line" fill="none" points={series.map((d, i) => `${x(i)},${y(d.value)}`).join(' ')} /> : null}
        {series.map((d, i) =>
          kind === 'line' ? (
            <circle key={d.day} class="point" cx={x(i)} cy={y(d.value)} r={3} data-day={d.day} data-value={d.value}>
              <title>{`${d.day}: ${d.value} ${unit}`}</title>
            </circle>
          ) : (
            <rect
              key={d.day}
              class="bar"
              x={LEFT + i * step + 1}
              y={y(d.value)}
              width={Math.max(1, step - 2)}
              height={HEIGHT - BOTTOM - y(d.value)}
              data-day={d.day}
              data-value={d.value}
            >
              <title>{`${d.day}: ${d.value} ${unit}`}</title>
            </rect>
          ),
        )}
        {series
          .filter((_, i) => (series.length - 1 - i) % 7 === 0)
          .map((d) => (
            <text key={d.day} x={x(series.indexOf(d))} y={HEIGHT - 6} class="tick" text-anchor="middle">
              {d.day.slice(5)}
            </text>
          ))}
      </svg>
      <figcaption class="note">{props.caption ?? `${props.title}, per UTC day.`}</figcaption>
    </figure>
  );
}
