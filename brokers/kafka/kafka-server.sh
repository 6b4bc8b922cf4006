#!/bin/sh
# The Kafka image's command: formats the storage on the first start, then runs the broker in the foreground.
#
# Environment (defaults for the `kafka` Service in namespace kubeless):
#   KAFKA_DATA_DIR              writable folder for the log segments and the generated config  (/var/lib/kafka)
#   KAFKA_LISTENERS             PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093
#   KAFKA_ADVERTISED_LISTENERS  what clients are told to connect to               (PLAINTEXT://kafka.kubeless:9092)
#   KAFKA_CONTROLLER_ADDRESS    host:port of the CONTROLLER listener, the quorum's one voter     (127.0.0.1:9093)
#   KAFKA_CLUSTER_ID            used by the first format only                    (a random one)
#   KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS   the JVM's flags; the heap stays small for a 768Mi pod on a small machine
set -eu

home=${KAFKA_HOME:-/opt/kafka}
data=${KAFKA_DATA_DIR:-/var/lib/kafka}
controller=${KAFKA_CONTROLLER_ADDRESS:-127.0.0.1:9093}
config=$data/server.properties

mkdir -p "$data/data"
{
  cat "$home/config/server.properties"
  echo
  echo "# from the environment of kafka-server.sh"
  echo "listeners=${KAFKA_LISTENERS:-PLAINTEXT://0.0.0.0:9092,CONTROLLER://$controller}"
  echo "advertised.listeners=${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://kafka.kubeless:9092}"
  echo "controller.quorum.bootstrap.servers=$controller"
  echo "log.dirs=$data/data"
} > "$config"

if [ ! -f "$data/data/meta.properties" ]; then
  # A cluster id is 16 random bytes in URL-safe base64 without padding; making it here saves a JVM start
  # (StorageTool random-uuid).
  cluster_id=${KAFKA_CLUSTER_ID:-$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c 1-22)}
  "$home/bin/kafka-storage.sh" format --standalone --cluster-id "$cluster_id" --config "$config"
fi

# shellcheck disable=SC2086  # the option variables hold several flags
exec java ${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m} \
  ${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true} \
  -cp "$home/libs/*" kafka.Kafka "$config"
