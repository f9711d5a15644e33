/** The value at rank ceil(q * n) of sorted values (nearest rank; q in (0, 1]: 0.5 is the lower median). */
export const quantile = <T extends ArrayLike<number>>(sorted: T, q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
