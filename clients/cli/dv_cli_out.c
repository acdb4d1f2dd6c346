// dv_cli_out — output formats shared by `drover local` and the commands
// that talk to a broker, so both print the same bytes for the same model.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dv_cli.h"
#include "dv_limits.h"

// Write s as a JSON string literal.
void
dv_cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

void
dv_cli_print_metrics_json(const dv_metrics_t *m, char *const *labels)
{
    printf("{\"task\":\"%s\",\"rows\":%zu", dv_task_name(m->task), m->rows);
    if (m->task == DV_TASK_REGRESSION) {
        printf(",\"mse\":%.17g,\"mae\":%.17g,\"r2\":%.17g}\n", m->mse, m->mae,
               m->r2);
        return;
    }
    printf(",\"accuracy\":%.17g,\"precision_macro\":%.17g,"
           "\"recall_macro\":%.17g,\"f1_macro\":%.17g,\"log_loss\":%.17g",
           m->accuracy, m->precision_macro, m->recall_macro, m->f1_macro,
           m->log_loss);
    if (m->n_classes == 2) {
        printf(",\"precision\":%.17g,\"recall\":%.17g,\"f1\":%.17g",
               m->precision, m->recall, m->f1);
    }
    printf(",\"classes\":[");
    for (size_t c = 0; c < m->n_classes; c++) {
        printf(c ? "," : "");
        dv_cli_json_str(stdout, labels[c]);
    }
    printf("],\"confusion\":[");
    for (size_t i = 0; i < m->n_classes; i++) {
        printf(i ? ",[" : "[");
        for (size_t j = 0; j < m->n_classes; j++) {
            printf(j ? ",%" PRIu64 : "%" PRIu64,
                   m->confusion[i * m->n_classes + j]);
        }
        printf("]");
    }
    printf("]}\n");
}

void
dv_cli_print_metrics_text(const dv_metrics_t *m, char *const *labels)
{
    if (m->task == DV_TASK_REGRESSION) {
        printf("regression on %zu rows\n", m->rows);
        printf("  r2        %.4f\n  mse       %.6g\n  mae       %.6g\n", m->r2,
               m->mse, m->mae);
        return;
    }
    printf("classification on %zu rows, %zu classes\n", m->rows, m->n_classes);
    printf("  accuracy         %.4f\n", m->accuracy);
    printf("  precision_macro  %.4f\n", m->precision_macro);
    printf("  recall_macro     %.4f\n", m->recall_macro);
    printf("  f1_macro         %.4f\n", m->f1_macro);
    if (m->n_classes == 2) {
        printf("  precision        %.4f  (class %s)\n", m->precision,
               labels[1]);
        printf("  recall           %.4f\n", m->recall);
        printf("  f1               %.4f\n", m->f1);
    }
    printf("  log_loss         %.4f\n", m->log_loss);
    if (m->n_classes <= 20) {
        printf("  confusion matrix (rows: true, columns: predicted)\n");
        for (size_t i = 0; i < m->n_classes; i++) {
            printf("  %10.10s ", labels[i]);
            for (size_t j = 0; j < m->n_classes; j++) {
                printf(" %5" PRIu64, m->confusion[i * m->n_classes + j]);
            }
            printf("\n");
        }
    }
}

// Write a CSV field, quoting it when it holds a comma, quote or newline.
void
dv_cli_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') {
            fputc('"', f);
        }
        fputc(*s, f);
    }
    fputc('"', f);
}

void
dv_cli_write_predictions(FILE *f,
                         const dv_tensor_t *pred,
                         char *const *labels,
                         size_t n_labels)
{
    // Header: `value` (regression) or `class,label,p_<label>...`.
    if (labels == NULL) {
        fputs("value\n", f);
        for (size_t i = 0; i < pred->rows; i++) {
            fprintf(f, "%.9g\n", pred->data[i]);
        }
    } else {
        size_t k = n_labels;
        fputs("class,label", f);
        for (size_t c = 0; c < k; c++) {
            char name[DV_MAX_NAME_BYTES + 3];
            snprintf(name, sizeof name, "p_%s", labels[c]);
            fputc(',', f);
            dv_cli_csv_field(f, name);
        }
        fputc('\n', f);
        for (size_t i = 0; i < pred->rows; i++) {
            const float *p = pred->data + i * k;
            size_t best = 0;
            for (size_t c = 1; c < k; c++) {
                best = p[c] > p[best] ? c : best;
            }
            fprintf(f, "%zu,", best);
            dv_cli_csv_field(f, labels[best]);
            for (size_t c = 0; c < k; c++) {
                fprintf(f, ",%.6g", p[c]);
            }
            fputc('\n', f);
        }
    }
}
