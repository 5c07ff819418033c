/** Cursor pagination as async iterators. */

/** A page as the REST API returns it. */
export interface CursorPage<T> {
  results: T[];
  next_cursor?: string | null;
}

/**
 * Every item of a cursor-paged listing, fetched lazily one page at a time.
 *
 * ```ts
 * for await (const memory of client.getAll({ userId: "alice" })) console.log(memory.memory);
 * for await (const page of client.getAll({ userId: "alice" }).pages()) console.log(page.next_cursor);
 * const all = await client.getAll({ userId: "alice" }).toArray();
 * ```
 *
 * Each iteration starts again from the first cursor; breaking out of a loop stops fetching.
 */
export class Pager<T> implements AsyncIterable<T> {
  private readonly fetchPage: (cursor: string | undefined) => Promise<CursorPage<T>>;
  private readonly firstCursor: string | undefined;

  constructor(fetchPage: (cursor: string | undefined) => Promise<CursorPage<T>>, cursor?: string) {
    this.fetchPage = fetchPage;
    this.firstCursor = cursor;
  }

  /** The pages, in order, until the server returns no `next_cursor`. */
  async *pages(): AsyncGenerator<CursorPage<T>, void, undefined> {
    let cursor = this.firstCursor;
    const seen = new Set<string>();
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield page;
      const next = page.next_cursor ?? undefined;
      if (next === undefined || seen.has(next)) return;
      seen.add(next);
      cursor = next;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.results;
  }

  /** Every item in one array (fetches every page: mind large scopes). */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) out.push(item);
    return out;
  }
}
