# postgres-migrator: one static-ish binary on Debian slim, running as a non-root user.
#   docker build -t postgres-migrator .
#   docker run -p 8080:8080 -e MIGRATOR__MAPPINGS__PROD__SOURCE__URL=... postgres-migrator
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin postgres-migrator

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home migrator
COPY --from=build /src/target/release/postgres-migrator /usr/local/bin/postgres-migrator
USER 10001
EXPOSE 8080
ENV MIGRATOR__LOG__FORMAT=json
ENTRYPOINT ["postgres-migrator"]
CMD ["run"]
