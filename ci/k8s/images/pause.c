/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, exits on INT/TERM.
 * Built static (`cc -static`) into the local image containerd is pinned to, so no pod ever
 * needs a registry. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {.sa_handler = quit};
  struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGCHLD, &child, NULL);
  if (getpid() != 1) {
    static const char msg[] = "pause: meant to run as a pod's PID 1\n";
    (void)!write(2, msg, sizeof msg - 1);
  }
  for (;;) pause();
}
