/* commands - the subcommands of the gesso binary. Each returns a process exit code. */
#ifndef GS_CLI_COMMANDS_H
#define GS_CLI_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_horde(int argc, char **argv);
int cmd_keys(int argc, char **argv);

#endif
