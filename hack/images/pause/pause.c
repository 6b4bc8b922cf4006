/* The pod sandbox's pause process: holds the pod's namespaces open until the kubelet stops it.
 * Exits 0 on SIGTERM or SIGINT and reaps every child it inherits (it is PID 1 when the pod shares its PID namespace). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void exit_cleanly(int signal_number) {
  (void)signal_number;
  _exit(0);
}

static void reap_children(int signal_number) {
  (void)signal_number;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static void handle(int signal_number, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  if (sigaction(signal_number, &action, NULL) < 0) {
    perror("pause: sigaction");
    exit(1);
  }
}

int main(void) {
  handle(SIGINT, exit_cleanly, 0);
  handle(SIGTERM, exit_cleanly, 0);
  handle(SIGCHLD, reap_children, SA_NOCLDSTOP | SA_RESTART);
  if (getpid() != 1) {
    fprintf(stderr, "pause: warning: not running as PID 1\n");
  }
  for (;;) {
    pause();
  }
}
