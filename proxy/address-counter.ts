/** Open connections per source address, for a per-address cap (a flood from one address cannot starve the rest). */
export class AddressCounter {
  private readonly counts = new Map<string, number>();

  /** Takes a slot for `address`; false when it already holds `max`. */
  acquire(address: string, max: number): boolean {
    const n = this.counts.get(address) ?? 0;
    if (n >= max) return false;
    this.counts.set(address, n + 1);
    return true;
  }

  /** Frees a slot taken by acquire. */
  release(address: string): void {
    const n = (this.counts.get(address) ?? 1) - 1;
    if (n <= 0) this.counts.delete(address);
    else this.counts.set(address, n);
  }

  /** Addresses with open connections (for tests). */
  get size(): number {
    return this.counts.size;
  }
}
