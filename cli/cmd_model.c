/* ferrolens model import-keras|info: model files. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static cli_option import_opts[] = {
    {"input", CLI_STRING, "FILE", "Keras 2.1 HDF5 file of the Agar LSTM autoencoder (weights or full model)", NULL, 0, 0, 0, 0, 0, NULL},
    {"steps", CLI_INT, "N", "curve length the model will be used with", "96", 8, 100000, 0, 0, 0, NULL},
    {"decoder", CLI_STRING, "FILE", "optional retrained decoder (Agar's update_decoder) to swap in", NULL, 0, 0, 0, 0, 0, NULL},
    {"model", CLI_STRING, "FILE", "output model file (.safetensors)", NULL, 0, 0, 0, 0, 0, NULL},
    CLI_OPT_JSON,
    CLI_OPT_END};

static cli_option info_opts[] = {CLI_OPT_MODEL, CLI_OPT_JSON, CLI_OPT_END};

static int model_import(int argc, char **argv)
{
    const char *cmd = "model import-keras";
    int rc = cli_parse(cmd, import_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd, "Convert published Keras HDF5 LSTM-autoencoder weights into a Ferrolens model.",
                       import_opts, "Writes --model; with --json prints {\"model\":..., \"parameters\":...}.\n");
        return 0;
    }
    if (rc) return rc;
    const char *in = cli_str(import_opts, "input"), *out = cli_str(import_opts, "model");
    if (!in || !out) return cli_usage_error(cmd, "--input and --model are required");
    fl_ctx *ctx = fl_ctx_new();
    if (!ctx) return cli_error("out of memory");
    fl_sae *m = NULL;
    fl_status st = fl_sae_import_keras(ctx, in, (int32_t)cli_int(import_opts, "steps"), &m);
    if (!st && cli_str(import_opts, "decoder")) st = fl_sae_import_keras_decoder(ctx, m, cli_str(import_opts, "decoder"));
    if (!st) st = fl_sae_save(ctx, m, out);
    if (st) rc = cli_engine_error(ctx);
    if (!rc) {
        const fl_sae_config *c = fl_sae_get_config(m);
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "command", cmd);
        cli_json_str(&j, "model", out);
        cli_json_int(&j, "parameters", fl_sae_param_count(m));
        cli_json_int(&j, "hidden", c->hidden);
        cli_json_int(&j, "enc_layers", c->enc_layers);
        cli_json_int(&j, "dec_layers", c->dec_layers);
        cli_json_int(&j, "latent", c->latent);
        cli_json_bool(&j, "bidirectional", c->bidirectional);
        cli_json_end(&j);
        if (cli_flag(import_opts, "json")) rc = cli_json_emit(&j, 1, NULL);
        else fprintf(stderr, "wrote %s (%lld parameters)\n", out, (long long)fl_sae_param_count(m));
        cli_json_free(&j);
    }
    fl_sae_free(m);
    fl_ctx_free(ctx);
    return rc;
}

static int model_info(int argc, char **argv)
{
    const char *cmd = "model info";
    int rc = cli_parse(cmd, info_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd, "Describe a model file: family, format version, configuration, training record.",
                       info_opts, NULL);
        return 0;
    }
    if (rc) return rc;
    const char *path = cli_str(info_opts, "model");
    if (!path) return cli_usage_error(cmd, "--model is required");
    fl_ctx *ctx = fl_ctx_new();
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!ctx || !buf) {
        fl_ctx_free(ctx);
        free(buf);
        return cli_error("out of memory");
    }
    if (fl_model_info(ctx, path, cli_flag(info_opts, "json"), buf, cap)) rc = cli_engine_error(ctx);
    else printf("%s%s", buf, cli_flag(info_opts, "json") ? "\n" : "");
    free(buf);
    fl_ctx_free(ctx);
    return rc;
}

int cmd_model(int argc, char **argv)
{
    const char *action = argc > 0 ? argv[0] : "--help";
    if (!strcmp(action, "import-keras")) return model_import(argc, argv);
    if (!strcmp(action, "info")) return model_info(argc, argv);
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        printf("Usage: ferrolens model import-keras|info [options]\n"
               "  import-keras  published Keras HDF5 LSTM-autoencoder weights -> model.safetensors\n"
               "  info          describe a model file\n");
        return 0;
    }
    static const char *const actions[] = {"import-keras", "info", NULL};
    const char *near = cli_best_match(action, actions);
    return cli_usage_error("model", "unknown action '%s'%s%s%s", action, near ? " (did you mean '" : "",
                           near ? near : "", near ? "'?)" : "");
}
