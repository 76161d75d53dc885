//! `schema.sql` at the repository's root is the schema the migrations make:
//! what `pg_dump --schema-only` prints of a freshly migrated database, so
//! that nobody has to replay the migrations in their head.
//!
//! After a new migration, write it anew and commit it with the migration:
//! `VERDAD_WRITE_SCHEMA=1 cargo test --test api schema::` (or
//! `scripts/schema-dump`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use verdad::server::embedded_pg::find_program;

use crate::helpers::spawn_app;

/// Set (to anything) to write `schema.sql` instead of checking it.
const WRITE: &str = "VERDAD_WRITE_SCHEMA";

#[tokio::test]
async fn schema_sql_is_the_schema_the_migrations_make() {
    // Arrange: the test's database, freshly migrated.
    let app = spawn_app().await;
    let major = server_major_version(&app.pool).await;

    // Act
    let dumped = normalise(&dump_schema(&app.database_url, major));

    // Assert
    let path = schema_sql();
    let header = format!(
        "-- The schema the migrations make, as PostgreSQL {major}'s pg_dump --schema-only\n\
         -- --no-owner --no-privileges prints it, without the migrations' own table and\n\
         -- without pg_dump's comments and settings. Do not edit: a test checks it\n\
         -- (tests/api/schema.rs), and scripts/schema-dump writes it.\n\n"
    );
    if std::env::var_os(WRITE).is_some() {
        std::fs::write(&path, format!("{header}{dumped}"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let committed = normalise(&committed);
    if committed != dumped {
        let line = first_difference(&committed, &dumped);
        panic!(
            "schema.sql is not the schema the migrations make (PostgreSQL {major}): they \
             differ from line {line} of the normalised dump on:\n  schema.sql: {:?}\n  \
             migrated:   {:?}\nWrite it anew with `{WRITE}=1 cargo test --test api schema::` \
             (or scripts/schema-dump), check `git diff schema.sql`, and commit it with the \
             migration",
            committed.lines().nth(line - 1).unwrap_or("(end of file)"),
            dumped.lines().nth(line - 1).unwrap_or("(end of file)"),
        );
    }
}

fn schema_sql() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.sql")
}

/// The server's major version (15 for 15.20).
async fn server_major_version(pool: &sqlx::PgPool) -> u32 {
    let number: String = sqlx::query_scalar("show server_version_num")
        .fetch_one(pool)
        .await
        .unwrap();
    number.parse::<u32>().unwrap() / 10_000
}

/// The schema of `database_url` as the pg_dump of the server's major version
/// prints it.
fn dump_schema(database_url: &str, major: u32) -> String {
    let pg_dump = find_program("pg_dump", major).unwrap_or_else(|| {
        panic!(
            "no pg_dump of PostgreSQL {major} (the server's) in /usr/lib/postgresql/{major}/bin \
             or on PATH: install its client (Debian: postgresql-client-{major})"
        )
    });
    let output = Command::new(&pg_dump)
        .args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=public._sqlx_migrations",
            "--dbname",
            database_url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", pg_dump.display()));
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("pg_dump prints UTF-8")
}

/// The dump without what differs between two dumps of the same schema or
/// says nothing about it: pg_dump's comments (its header names the
/// versions), its settings, the `\restrict` key recent releases print at
/// random, and runs of blank lines (one is kept between statements).
fn normalise(dump: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in dump.lines().map(str::trim_end) {
        let noise = line.starts_with("--")
            || line.starts_with("SET ")
            || line.starts_with("SELECT pg_catalog.set_config(")
            || line.starts_with("\\restrict ")
            || line.starts_with("\\unrestrict ");
        let repeated_blank = line.is_empty() && lines.last().is_none_or(|last| last.is_empty());
        if !noise && !repeated_blank {
            lines.push(line);
        }
    }
    while lines.last().is_some_and(|last| last.is_empty()) {
        lines.pop();
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The number (from 1) of the first line where `a` and `b` differ.
fn first_difference(a: &str, b: &str) -> usize {
    let (mut a, mut b) = (a.lines(), b.lines());
    let mut number = 1;
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => number += 1,
            _ => return number,
        }
    }
}

#[test]
fn normalising_drops_what_differs_between_dumps_of_one_schema() {
    let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\n\
                SET statement_timeout = 0;\n\
                SELECT pg_catalog.set_config('search_path', '', false);\n\n\n\
                CREATE TABLE public.t (\n    id uuid NOT NULL\n);\n\n\n\
                --\n-- Name: t t_pkey; Type: CONSTRAINT\n--\n\n\
                ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\n\
                \\unrestrict abc123\n\n";
    assert_eq!(
        normalise(dump),
        "CREATE TABLE public.t (\n    id uuid NOT NULL\n);\n\n\
         ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n"
    );
}
