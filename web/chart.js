import uPlot from 'uplot';
import { html, useEffect, useRef } from './html.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

/**
 * A uPlot time chart. `series`: [{ label, color?, points?, bars? }]; `data`: [times (s), ...values]
 * with one array per series. The plot is rebuilt only when the set of series changes, otherwise
 * new data is pushed into it, so a chart updating every second stays cheap.
 */
export function Chart({ title, series, data, height = 180, unit = '' }) {
  const box = useRef(null);
  const plot = useRef(null);
  const key = series.map((s) => s.label).join('\n');
  useEffect(() => {
    const width = Math.max(300, box.current.clientWidth);
    const opts = {
      width,
      height,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#6b7280' },
        { stroke: '#6b7280', size: 60, values: (_, ticks) => ticks.map((v) => `${v}${unit}`) },
      ],
      series: [
        {},
        ...series.map((s, i) => {
          const color = s.color ?? COLORS[i % COLORS.length];
          const base = { label: s.label, stroke: color, width: 2 };
          if (s.points) return { ...base, paths: () => null, points: { show: true, size: 6, fill: color } };
          if (s.bars)
            return {
              ...base,
              fill: `${color}88`,
              paths: uPlot.paths.bars({ size: [0.8, 40] }),
              points: { show: false },
            };
          return { ...base, points: { show: false } };
        }),
      ],
    };
    plot.current = new uPlot(opts, data, box.current);
    const onResize = () => plot.current?.setSize({ width: Math.max(300, box.current.clientWidth), height });
    addEventListener('resize', onResize);
    return () => {
      removeEventListener('resize', onResize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, [key]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return html`<div class="chart"><h3>${title}</h3><div ref=${box}></div></div>`;
}
