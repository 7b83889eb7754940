// preact + htm: tagged templates instead of JSX, so the dashboard needs no compile step beyond bundling.
import htm from 'htm';
import { h, render } from 'preact';

export const html = htm.bind(h);
export { useEffect, useMemo, useRef, useState } from 'preact/hooks';
export { render };
