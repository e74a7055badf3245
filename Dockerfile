# One image with the operator and the example jobs (StreamJobs set `command` to a job binary
# in /usr/local/bin). Not built in CI.  docker build -t ghcr.io/weir-dev/weir:0.1.0 .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p weir-operator --bin weir-operator \
 && cargo build --release -p weir-examples --features rocksdb --bins \
 && mkdir /out \
 && cp target/release/weir-operator /out/ \
 && find target/release -maxdepth 1 -type f -executable \
      \( -name wordcount -o -name socket-wordcount -o -name rolling-sum -o -name window-count \
         -o -name exactly-once -o -name pipeline-bench \) -exec cp {} /out/ \;

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/weir-operator"]
