#!/bin/sh
# Plays the external runner of a managed pipeline job (an HPC batch script, another service):
# it writes into the job's archive folder and reports each step to the job's webhook with curl.
#
#   runner.sh WEBHOOK_URL ARCHIVE_FOLDER INPUT_FILE
#
# Each event carries an "id", so a retried POST (curl --retry) is applied once.
set -eu
webhook=$1
archive=$2
input=$3

post() {  # post EVENT ID [DATA_JSON]: fail (exit 22) on any HTTP error
    curl --silent --show-error --fail-with-body --retry 3 --retry-all-errors \
        -H 'Content-Type: application/json' \
        -d "{\"event\": \"$1\", \"id\": \"$2\", \"data\": ${3:-{\}}}" "$webhook"
    echo
}

post run run-1 '{"host": "'"$(hostname)"'"}'
mkdir -p "$archive/counts" "$archive/logs"
words=$(wc -w < "$input" | tr -d ' ')
printf 'file,words\n%s,%s\n' "$(basename "$input")" "$words" > "$archive/counts/words.csv"
echo "counted $words words" > "$archive/logs/run.log"
post update progress-1 '{"progress": 100, "words": '"$words"'}'
post finish finish-1 '{"exit_code": 0}'
post index index-1
