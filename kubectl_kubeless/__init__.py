"""kubectl-kubeless: Kubeless functions-as-a-service as a kubectl plugin, a small controller and runtime images."""
