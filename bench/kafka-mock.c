/*
 * kafka-mock: a Kafka-protocol broker on 127.0.0.1 for the tests and the
 * bench, where no Apache Kafka can be had. It is librdkafka's own mock
 * cluster (rdkafka_mock.h), which real clients (kcat, @platformatic/kafka)
 * produce to and fetch from, keys and headers included.
 *
 *   cc -O2 -o kafka-mock bench/kafka-mock.c -lrdkafka   (Debian: librdkafka-dev)
 *   kafka-mock [-b BROKERS] [-p PARTITIONS] [-r ERROR:COUNT] [-u TOPIC] ADDRESS_FILE TOPIC...
 *
 * It creates each TOPIC with PARTITIONS partitions (default 16) led by BROKERS
 * brokers (default 3), writes the bootstrap address (host:port,...) and a
 * newline to ADDRESS_FILE once it listens, and serves until SIGTERM or SIGINT.
 * librdkafka 2.0's mock creates any other topic a client asks about, even
 * when its request forbids that; -u TOPIC makes it answer for TOPIC as Kafka
 * answers for a topic that does not exist (UNKNOWN_TOPIC_OR_PARTITION).
 * -r answers the next COUNT produce requests with Kafka error code ERROR
 * (10 is MESSAGE_TOO_LARGE), as a broker refusing them would.
 *
 * Not Apache Kafka: it checks no size limit of its own, and librdkafka
 * 2.0's mock keeps only the last 5 MB or so of each partition.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* The Kafka protocol's API key of Produce requests. */
enum { PRODUCE_API_KEY = 0 };

static volatile sig_atomic_t stopping = 0;

static void on_signal(int signal_number) {
        (void)signal_number;
        stopping = 1;
}

static int usage(const char *program) {
        fprintf(stderr, "usage: %s [-b BROKERS] [-p PARTITIONS] [-r ERROR:COUNT] [-u TOPIC] ADDRESS_FILE TOPIC...\n", program);
        return 2;
}

/* Queues `count` copies of `error` for the cluster's next produce requests. */
static int refuse_produce(rd_kafka_mock_cluster_t *cluster, const char *spec) {
        int error = 0, count = 0;
        if (sscanf(spec, "%d:%d", &error, &count) != 2 || count < 1) return -1;
        rd_kafka_resp_err_t *errors = calloc((size_t)count, sizeof *errors);
        if (!errors) return -1;
        for (int at = 0; at < count; at++) errors[at] = (rd_kafka_resp_err_t)error;
        rd_kafka_mock_push_request_errors_array(cluster, PRODUCE_API_KEY, (size_t)count, errors);
        free(errors);
        return 0;
}

int main(int argc, char **argv) {
        int brokers = 3, partitions = 16, option;
        const char *refusal = NULL, *unknown = NULL;
        while ((option = getopt(argc, argv, "b:p:r:u:")) != -1) {
                if (option == 'b') brokers = atoi(optarg);
                else if (option == 'p') partitions = atoi(optarg);
                else if (option == 'r') refusal = optarg;
                else if (option == 'u') unknown = optarg;
                else return usage(argv[0]);
        }
        if (argc - optind < 2 || brokers < 1 || partitions < 1) return usage(argv[0]);
#ifdef __linux__
        /* A broker a test started ends with the test, however the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif

        /* The mock cluster lives in a client handle's threads; this handle does nothing else. */
        char reason[512];
        rd_kafka_conf_t *configuration = rd_kafka_conf_new();
        /* Warnings only: without bootstrap.servers the handle would log a notice no one needs. */
        rd_kafka_conf_set(configuration, "log_level", "4", reason, sizeof reason);
        rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, configuration, reason, sizeof reason);
        if (!host) {
                fprintf(stderr, "kafka-mock: %s\n", reason);
                return 1;
        }
        rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(host, brokers);
        if (!cluster) {
                fprintf(stderr, "kafka-mock: cannot start a mock cluster\n");
                return 1;
        }
        for (int at = optind + 1; at < argc; at++) {
                if (rd_kafka_mock_topic_create(cluster, argv[at], partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                        fprintf(stderr, "kafka-mock: cannot create topic %s\n", argv[at]);
                        return 1;
                }
        }
        if (refusal && refuse_produce(cluster, refusal) != 0) return usage(argv[0]);
        if (unknown) rd_kafka_mock_topic_set_error(cluster, unknown, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);

        /* Written whole, then renamed, so a reader never sees half an address. */
        char partial[4096];
        snprintf(partial, sizeof partial, "%s.partial", argv[optind]);
        FILE *file = fopen(partial, "w");
        if (!file || fprintf(file, "%s\n", rd_kafka_mock_cluster_bootstraps(cluster)) < 0 || fclose(file) != 0 ||
            rename(partial, argv[optind]) != 0) {
                perror("kafka-mock: cannot write the address file");
                return 1;
        }

        /* Signals stay blocked but while sigsuspend waits, so none slips in between the check and the wait. */
        sigset_t stop_signals, waiting;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        sigprocmask(SIG_BLOCK, &stop_signals, &waiting);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        while (!stopping) sigsuspend(&waiting);
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(host);
        return 0;
}
