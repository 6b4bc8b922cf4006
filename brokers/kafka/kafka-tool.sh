#!/bin/sh
# The one script behind kafka-topics.sh, kafka-console-producer.sh, kafka-console-consumer.sh and kafka-storage.sh
# (symlinks to it): the name it is called by picks the class, as in Kafka's own bin/ folder, whose bash scripts
# are not in a Maven artifact. `kubectl exec` into the broker runs these, so each is a second JVM in the pod:
# a small heap, the quick client compiler, and warnings only (the clients log their whole config at info).
set -eu

case ${0##*/} in
  kafka-topics.sh) class=org.apache.kafka.tools.TopicCommand ;;
  kafka-console-producer.sh) class=org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer.sh) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-storage.sh) class=kafka.tools.StorageTool ;;
  *) echo "kafka-tool.sh: call it as kafka-topics.sh, kafka-console-producer.sh, kafka-console-consumer.sh" \
       "or kafka-storage.sh (a symlink), not as ${0##*/}" >&2
     exit 2 ;;
esac
exec java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="${KAFKA_TOOL_LOG_LEVEL:-warn}" \
  -cp "${KAFKA_HOME:-/opt/kafka}/libs/*" "$class" "$@"
