/**
 * Empty on purpose: a pool cell (cell.ts) imports it once while warming, so the ESM loader's
 * file: import path (resolve, read, link, evaluate) is already warm when the function's module
 * is imported.
 */
export const warm = true;
