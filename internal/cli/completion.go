package cli

import (
	"github.com/msctl/msctl/internal/kube"
	"github.com/spf13/cobra"
)

// NewCmdCompletion builds `msctl completion SHELL`.
func NewCmdCompletion(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print the completion script for a shell. Completion covers commands, flags,
service names from msctl.yaml and contexts from your kubeconfig. Prebuilt
scripts ship in the release archives under completions/.`,
		Example: `  # bash, for this session / for good
  source <(msctl completion bash)
  msctl completion bash > /etc/bash_completion.d/msctl

  # zsh: somewhere on $fpath
  msctl completion zsh > "${fpath[1]}/_msctl"

  # fish
  msctl completion fish > ~/.config/fish/completions/msctl.fish

  # PowerShell
  msctl completion powershell | Out-String | Invoke-Expression`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      usageArgs(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), f.IO.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			default:
				return root.GenPowerShellCompletionWithDesc(out)
			}
		},
	}
	return cmd
}

// completeServices offers the project's service names not yet on the line.
func completeServices(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := f.resolve(); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		loaded, err := f.Project()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		taken := map[string]bool{}
		for _, a := range args {
			taken[a] = true
		}
		var names []cobra.Completion
		for _, s := range loaded.Project.Services {
			if !taken[s.Name] {
				names = append(names, s.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeContexts offers the contexts of the kubeconfig in use.
func completeContexts(f *Factory) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		names, err := kube.Contexts(f.v.GetString("kube.kubeconfig"))
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
