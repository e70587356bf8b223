/**
 * @module Page-numbered listings (`?page=&limit=`, as the CLI sends them): the slice a
 * query asks for and the envelope every paginated answer uses.
 */

export interface PageQuery {
  page: number;
  limit: number;
}

/** The rows a page covers. */
export function pageSlice(query: PageQuery): { offset: number; limit: number } {
  return { offset: query.page * query.limit, limit: query.limit };
}

/** `{total, page, limit, items}`. */
export function pageBody<T>(query: PageQuery, total: number, items: T[]) {
  return { total, page: query.page, limit: query.limit, items };
}
