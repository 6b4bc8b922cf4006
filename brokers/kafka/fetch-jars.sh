#!/bin/sh
# usage: fetch-jars.sh VERSION   prints the cache folder whose libs/ holds Apache Kafka VERSION and its jars
#
# Debian packages no Kafka, and the release tarball is not reachable here, but Maven Central is: Maven resolves
# kafka_2.13 (the broker) and kafka-tools (the topic, producer and consumer commands, which the broker does not
# depend on) with their runtime trees, less Kafka Connect's runtime (Jetty and Jersey, 11 MB), which only the
# connect-plugin-path tool needs. Kafka ships only slf4j-api (pinned at 1.7.36), so slf4j-simple is added as
# the binding, or the broker would log nothing at all. The jars are cached outside the clone, one folder per version
# and per text of this script (which names the artifacts); a folder counts only once `.complete` exists, so an
# interrupted run starts again.
set -eu

version=$1
script_digest=$(sha256sum "$0" | cut -c 1-12)
cache=${KUBELESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-kubeless}/kafka-$version-$script_digest
if [ -f "$cache/.complete" ]; then
  echo "$cache"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.kubeless.brokers</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>
    </dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
rm -rf "$cache"
mkdir -p "$cache"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$cache/libs" >&2
# the broker's classes must be there, or Maven resolved something other than what was asked
ls "$cache/libs/kafka_2.13-$version.jar" >/dev/null
touch "$cache/.complete"
echo "$cache"
