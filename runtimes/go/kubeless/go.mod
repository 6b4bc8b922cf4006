// The project's own implementation of the Kubeless Go API (github.com/kubeless/kubeless/pkg/functions) and the
// server that runs a Go function. The compile step replaces the module path with this folder, so functions written
// for Kubeless build unchanged and offline. The go line is kept old on purpose: a dependency's go line raises the
// function's own, and with it the language rules its code is compiled under.
module github.com/kubeless/kubeless

go 1.13
