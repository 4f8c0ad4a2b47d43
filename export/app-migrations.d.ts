// The shape of export/app-migrations.json, idstore's migration steps for the app's
// migration service (`idstore generate app-migrations`); the JSON Schema beside it,
// app-migrations.schema.json, says the same with every constraint.

/** The whole file. */
export interface AppMigrations {
  /** Always "idstore-app-migrations": check it before anything else. */
  format: string;
  /** The version of this shape (1): a change a reader must know about is a new one. */
  formatVersion: number;
  /** The idstore that wrote the file. */
  producer: { name: string; version: string };
  about: string;
  /**
   * A read-only query over the file: a row `(step, token)` per step, oldest first.
   * `token` NULL: the step runs, adopting what it finds; `already_applied`: the file
   * has it; another token: the step would be refused with it. Later steps are judged
   * on the file as it is now.
   */
  preflight: string;
  /** Oldest first. */
  steps: AppMigrationStep[];
  /** Every refusal the steps' SQL can raise. */
  refusals: AppMigrationRefusal[];
}

/** One step, as the service runs it. */
export interface AppMigrationStep {
  /** The name the service records it under: `idstore_` and the step's folder. */
  name: string;
  /** idstore's version of the step (14 digits). */
  version: string;
  summary: string;
  /** A rollout may stop after this step: ship the steps up to and including it. */
  pausePoint: boolean;
  /** Run in one transaction, then record `name`. */
  sql: string;
  /** SHA-256 of `sql`'s UTF-8 bytes, lowercase hex. */
  sqlSha256: string;
  /** Reverts the step, in one transaction; roll back newest first. */
  down: string;
  /** SHA-256 of `down`'s UTF-8 bytes, lowercase hex. */
  downSha256: string;
}

/** A refusal: the error's message is `idstore:<token>: <message>`. */
export interface AppMigrationRefusal {
  token: string;
  /** What happened and what to do. */
  message: string;
  /** "up" or "down" (a step's preflight, before it writes anything) or "guard" (a trigger the step installs). */
  raisedBy: string;
  /** The version of the step whose SQL raises it. */
  step: string;
}
