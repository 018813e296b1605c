# postgres-migrator: one static-ish binary on Debian slim, running as a non-root user.
#   docker build -t postgres-migrator .
#   docker run -p 8080:8080 -e MIGRATOR__MAPPINGS__PROD__SOURCE__URL=... postgres-migrator
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin postgres-migrator

FROM debian:bookworm-slim
# pg_dump/pg_restore for `backup`: they must be at least the server's major version, so the
# client programs of 15 to 18 come from the PostgreSQL project's apt repository (the tool picks
# the lowest that is new enough for each server).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    | gpg --dearmor -o /usr/share/keyrings/pgdg.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
    > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 postgresql-client-16 \
    postgresql-client-17 postgresql-client-18 \
 && apt-get purge -y curl gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home migrator
COPY --from=build /src/target/release/postgres-migrator /usr/local/bin/postgres-migrator
USER 10001
EXPOSE 8080
ENV MIGRATOR__LOG__FORMAT=json
ENTRYPOINT ["postgres-migrator"]
CMD ["run"]
